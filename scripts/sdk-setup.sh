#!/usr/bin/env bash
# Prepares the Sitecore SDK compatibility tests (tests/browser):
#   1. `npm ci` in tests/sdk: the exact packages pinned by tests/sdk/package-lock.json
#      (@sitecore/engage 1.4.3, @sitecore-cloudsdk/{core,events,personalize} 0.6.1, esbuild),
#      skipped when node_modules already matches the lockfile;
#   2. bundles them, unmodified, into tests/sdk/dist/{engage,cloudsdk}.js (esbuild).
# Idempotent. Needs node >= 18 and npm, and reaches only the npm registry.
# With --with-chromium it also installs Debian's Chromium (apt-get) when /usr/bin/chromium
# is missing; the tests never download a Playwright browser.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sdk="$root/tests/sdk"

with_chromium=0
for arg in "$@"; do
  case "$arg" in
    --with-chromium) with_chromium=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "sdk-setup.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

if [[ $with_chromium == 1 && ! -x /usr/bin/chromium ]]; then
  echo "sdk-setup: installing chromium (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "sdk-setup: '$tool' not found; install Node.js >= 18 and npm (apt-get install -y nodejs npm)" >&2
    exit 1
  fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 18 )); then
  echo "sdk-setup: node $(node --version) is too old; the SDKs need node >= 18" >&2
  exit 1
fi

cd "$sdk"
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.innkeeper-lock.sha256"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_sum" && -d node_modules/@sitecore/engage ]]; then
  echo "sdk-setup: node_modules up to date"
else
  echo "sdk-setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > "$stamp"
fi

node build.mjs
echo "sdk-setup: done (bundles in tests/sdk/dist)"
