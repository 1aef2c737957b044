// Node driver: runs the server entry of the unmodified @sitecore-cloudsdk/{core,personalize} 0.6.1
// packages (CloudSDK(req, res, …).addPersonalize().initialize(), then personalize(req, …)) inside a
// real node:http server, the way a Node site would, against a live Innkeeper (sitecoreEdgeUrl).
// CommonJS because the packages' ESM server entries use extension-less re-exports that only
// bundlers resolve.
//
// Usage: node cloudsdk-server.cjs '<json>'   with json = { edgeUrl, contextId, siteName, friendlyId }
// Prints one JSON object on stdout: { steps: [{status, setCookie, body}], calls: [...] }.
// Exit code 0 unless the driver itself crashed; assertions are made by tests/browser.
'use strict';
const http = require('node:http');
const { CloudSDK } = require('@sitecore-cloudsdk/core/server');
const { personalize } = require('@sitecore-cloudsdk/personalize/server');

const input = JSON.parse(process.argv[2] ?? '{}');
const { edgeUrl, contextId, siteName, friendlyId } = input;

// Record every request the SDK makes (the SDK calls the global fetch).
const calls = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (url, options = {}) => {
  const call = { method: options.method ?? 'GET', url: String(url), headers: options.headers ?? {}, body: options.body ?? null };
  calls.push(call);
  try {
    const response = await realFetch(url, options);
    call.status = response.status;
    call.responseHeaders = Object.fromEntries(response.headers.entries());
    call.responseText = await response.clone().text();
    return response;
  } catch (err) {
    call.error = String(err);
    throw err;
  }
};

// core and personalize each call res.setHeader('Set-Cookie', …); on a bare node:http response the
// second call replaces the first (frameworks merge them). Merge them here, as a site would, so
// the visitor keeps both sc_cid and sc_cid_personalize.
function mergeSetCookie(res) {
  const setHeader = res.setHeader.bind(res);
  res.setHeader = (name, value) => {
    if (String(name).toLowerCase() !== 'set-cookie') return setHeader(name, value);
    const before = [].concat(res.getHeader('set-cookie') ?? []);
    return setHeader(name, [...before, ...[].concat(value)]);
  };
}

async function handle(req, res) {
  mergeSetCookie(res);
  const out = { incomingCookie: req.headers.cookie ?? null };
  try {
    await CloudSDK(req, res, { sitecoreEdgeContextId: contextId, siteName, sitecoreEdgeUrl: edgeUrl, enableServerCookie: true })
      .addPersonalize({ enablePersonalizeCookie: true })
      .initialize();
    out.personalize = await personalize(req, {
      channel: 'WEB', currency: 'EUR', friendlyId: new URL(req.url, 'http://x').searchParams.get('flow'),
      params: { page: { name: 'home' } },
    });
  } catch (err) {
    out.error = String(err && err.stack ? err.stack : err);
  }
  if (!res.headersSent) res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(out));
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    res.statusCode = 500;
    res.end(JSON.stringify({ error: String(err) }));
  });
});

(async () => {
  const result = { steps: [], calls };
  try {
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const site = `http://127.0.0.1:${server.address().port}`;
    // Visit 1: new visitor (no cookie), UTM in the page URL.
    const r1 = await realFetch(`${site}/home?flow=${friendlyId}&utm_campaign=spring`);
    const setCookie1 = r1.headers.getSetCookie ? r1.headers.getSetCookie() : [r1.headers.get('set-cookie')];
    result.steps.push({ status: r1.status, setCookie: setCookie1, body: await r1.json() });
    // Visit 2: the visitor comes back with the cookies the SDK set; then an unknown flow.
    const cookie = setCookie1.filter(Boolean).map((c) => c.split(';')[0]).join('; ');
    for (const flow of [friendlyId, 'no_such_flow_anywhere']) {
      const r = await realFetch(`${site}/home?flow=${flow}&utm_campaign=spring`, { headers: { cookie } });
      result.steps.push({ status: r.status, body: await r.json() });
    }
    result.cookie = cookie;
  } catch (err) {
    result.error = String(err && err.stack ? err.stack : err);
  } finally {
    server.close();
  }
  process.stdout.write(JSON.stringify(result));
})();
