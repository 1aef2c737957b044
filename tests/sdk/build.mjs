// Bundles the unmodified Sitecore SDK packages from node_modules into browser IIFE
// bundles under dist/. Run via scripts/sdk-setup.sh (or `npm run build`).
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));

const entries = {
  engage: 'src/engage-browser.mjs',
  cloudsdk: 'src/cloudsdk-browser.mjs',
};

for (const [name, entry] of Object.entries(entries)) {
  await build({
    absWorkingDir: here,
    entryPoints: [entry],
    outfile: `dist/${name}.js`,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome100'],
    sourcemap: false,
    minify: false,
    logLevel: 'warning',
  });
  console.log(`built dist/${name}.js`);
}
