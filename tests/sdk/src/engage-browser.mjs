// Browser entry for @sitecore/engage 1.4.3 (the npm package ships no browser bundle;
// build.mjs bundles this file, with the unmodified package code, into dist/engage.js).
// Exposes window.SitecoreEngage = { init }; the object init() resolves with has .version.
import { init } from '@sitecore/engage';

window.SitecoreEngage = { init };
