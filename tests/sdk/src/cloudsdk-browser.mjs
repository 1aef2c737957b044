// Browser entry for the Sitecore Cloud SDK 0.6.1 (core + events + personalize).
// The npm packages ship only ESM/CJS modules; build.mjs bundles them, unmodified,
// into dist/cloudsdk.js. Exposes window.SitecoreCloudSDK.
import { CloudSDK, getBrowserId, getGuestId } from '@sitecore-cloudsdk/core/browser';
import { initCoreState, LIBRARY_VERSION } from '@sitecore-cloudsdk/core/internal';
import {
  pageView,
  event,
  identity,
  form,
  addToEventQueue,
  processEventQueue,
  clearEventQueue,
  PACKAGE_VERSION as EVENTS_VERSION,
} from '@sitecore-cloudsdk/events/browser';
import { personalize, PACKAGE_VERSION as PERSONALIZE_VERSION } from '@sitecore-cloudsdk/personalize/browser';

window.SitecoreCloudSDK = {
  CloudSDK,
  getBrowserId,
  getGuestId,
  // Resolves once core's cookie creation (browser create.json) has finished.
  coreReady: () => initCoreState,
  pageView,
  event,
  identity,
  form,
  addToEventQueue,
  processEventQueue,
  clearEventQueue,
  personalize,
  versions: { core: LIBRARY_VERSION, events: EVENTS_VERSION, personalize: PERSONALIZE_VERSION },
};
