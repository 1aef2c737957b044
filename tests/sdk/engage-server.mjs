// Node driver: runs the server-side entry of the unmodified @sitecore/engage 1.4.3
// package (`initServer`, forceServerCookieMode) inside a real node:http server, the way
// a Node/Next.js site would, against a live Innkeeper (the SDK's targetURL).
//
// Usage: node engage-server.mjs '<json>'   with json = {
//   targetURL, clientKey, pointOfSale, email, identifierId }
// Prints one JSON object on stdout (see `result` below). Exit code 0 unless the
// driver itself crashed; assertions are made by tests/browser/test_sdk_compat.py.
import http from 'node:http';
import { initServer } from '@sitecore/engage';

const input = JSON.parse(process.argv[2] ?? '{}');
const { targetURL, clientKey, pointOfSale, email, identifierId } = input;

// Record every request the SDK makes (the SDK calls the global fetch).
const calls = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (url, options = {}) => {
  const call = {
    method: options.method ?? 'GET',
    url: String(url),
    headers: options.headers ?? {},
    body: options.body ?? null,
  };
  calls.push(call);
  try {
    const response = await realFetch(url, options);
    call.status = response.status;
    call.responseText = await response.clone().text();
    return response;
  } catch (err) {
    call.error = String(err);
    throw err;
  }
};

const engage = initServer({
  clientKey,
  targetURL,
  pointOfSale,
  cookieExpiryDays: 365,
  forceServerCookieMode: true,
});

const product = {
  type: 'FOOTWEAR',
  item_id: 'SHOES_8475GHT',
  name: 'Blue shoes',
  orderedAt: '2025-01-01T10:00',
  quantity: 2,
  price: 50.5,
  productId: 'SHOES',
  currency: 'EUR',
  referenceId: 'REF-1',
};

// One site request = what a page handler of a Node site would do.
async function handle(req, res) {
  const out = { requestUrl: req.url, incomingCookie: req.headers.cookie ?? null };
  try {
    // Creates the browser (GET /v1.2/browser/create.json) unless the request
    // already carries bid_<clientKey>; sets Set-Cookie on the response.
    await engage.handleCookie(req, res, 5000);
    out.cookieAfterHandle = req.headers.cookie ?? null;
    out.view = await engage.pageView(
      { channel: 'WEB', currency: 'EUR', language: 'EN', page: 'products' },
      req,
      { source: 'node' },
    );
    if (req.url.includes('step=1')) {
      out.identity = await engage.identity(
        {
          channel: 'WEB',
          currency: 'EUR',
          language: 'EN',
          page: 'login',
          email,
          firstName: 'Nora',
          lastName: 'Node',
          identifiers: [{ provider: 'CRM_ID', id: identifierId, expiryDate: '2030-01-01T00:00' }],
        },
        req,
      );
      out.add = await engage.event(
        'ADD',
        { channel: 'WEB', currency: 'EUR', language: 'EN', page: 'products', product },
        req,
        { campaign: 'summer' },
      );
    }
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

const result = { version: engage.version, steps: [], calls };
try {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const site = `http://127.0.0.1:${server.address().port}`;

  // Visit 1: new visitor, no cookie. Query carries UTM parameters (read by pageView).
  const r1 = await realFetch(`${site}/products?step=1&utm_source=newsletter&utm_medium=email`);
  const setCookie1 = r1.headers.get('set-cookie');
  result.steps.push({ status: r1.status, setCookie: setCookie1, body: await r1.json() });

  // Visit 2: the same visitor comes back with the cookie the SDK set.
  const cookiePair = setCookie1 ? setCookie1.split(';')[0] : '';
  const r2 = await realFetch(`${site}/products?step=2`, { headers: { cookie: cookiePair } });
  result.steps.push({ status: r2.status, setCookie: r2.headers.get('set-cookie'), body: await r2.json() });
  result.browserId = cookiePair.split('=')[1] ?? null;
  result.cookieName = cookiePair.split('=')[0] ?? null;

  // What the browser build's getGuestId() does (no server-side equivalent in 1.4.3).
  if (result.browserId) {
    const url = `${targetURL}/v1.2/browser/${result.browserId}/show.json?client_key=${clientKey}&api_token=${clientKey}`;
    const r3 = await realFetch(url, { headers: { 'X-Library-Version': engage.version } });
    result.show = { status: r3.status, body: await r3.json().catch(() => null) };
  }
} catch (err) {
  result.error = String(err && err.stack ? err.stack : err);
} finally {
  server.close();
}
process.stdout.write(JSON.stringify(result));
