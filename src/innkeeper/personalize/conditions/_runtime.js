/*
 * Innkeeper condition runtime (personalize.md §6.3, §6.5).
 *
 * Evaluated once per V8 isolate by sandbox.py. It removes timers and every source of memory outside the
 * V8 heap (ArrayBuffer & co. are not covered by the hard heap limit), replaces Date so that Date.now() and
 * new Date() return the injected clock, installs print()/console.*, freezes every built-in reachable from
 * the global object and locks the global bindings, then defines:
 *
 *   __ik_check(source)        -> null | "SyntaxError: …"          (parses, never runs)
 *   __ik_run(source, payload, params) -> JSON {"e": error|null, "t": truthy, "l": [logs], "v": value}
 *
 * payload is one JSON string {now, guest, request, session, event, flow, tenant} and params a JSON string of
 * the condition's parameter values; both are parsed per call, so a condition that mutates `guest` can never
 * affect a later call. Before parsing, every UTC timestamp string of the payload ("…:SS[.f{1,6}]Z", as msgspec
 * writes datetimes) is normalised to toISOString()'s "…:SS.mmmZ" (the rule of context.dumps, done here because
 * V8's regular expressions cost a fraction of Python's on a 100 KB guest).
 */
(function (g) {
  "use strict";
  var RealDate = g.Date;
  var RealFunction = g.Function;
  var parse = JSON.parse;
  var stringify = JSON.stringify;
  var ownNames = Object.getOwnPropertyNames;
  var ownSymbols = Object.getOwnPropertySymbols;
  var hasOwn = Object.prototype.hasOwnProperty;
  var ISO_UTC = /(?<!\\)"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z"/g;
  // The same rule in two steps, for speed: msgspec writes a datetime's fraction with six digits (or none), and
  // truncating those by a pattern replacement anchored on the "." costs a quarter of ISO_UTC's callback scan;
  // ISO_UTC then runs only if a timestamp with a fraction of 0-2, 4 or 5 digits remains (else it changes nothing).
  var ISO_UTC_6 = /(?<=(?<!\\)"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{3})\d{3}(?=Z")/g;
  var ISO_UTC_OTHER = /(?<=(?<!\\)"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,2}|\.\d{4,5})?)Z"/;
  var LOG_LIMIT = 8192;
  var RESULT_LIMIT = 262144;
  var nowMs = 0;
  var logs = [];
  var logSize = 0;

  var REMOVED = [
    "setTimeout", "clearTimeout", "setInterval", "clearInterval", "setImmediate", "clearImmediate",
    "queueMicrotask", "__timer_manager", "fetch", "XMLHttpRequest", "WebSocket", "require", "importScripts",
    "ArrayBuffer", "SharedArrayBuffer", "DataView", "Atomics", "WebAssembly", "Int8Array", "Uint8Array",
    "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "Float16Array",
    "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array", "Temporal", "FinalizationRegistry",
    "WeakRef"
  ];
  REMOVED.forEach(function (name) {
    try { delete g[name]; } catch (e) { /* `var` globals (mini-racer's setTimeout) cannot be deleted */ }
    if (hasOwn.call(g, name)) { g[name] = undefined; }
  });

  var FakeDate = function Date() {
    if (new.target === undefined) { return new RealDate(nowMs).toString(); }
    if (arguments.length === 0) { return Reflect.construct(RealDate, [nowMs], new.target); }
    return Reflect.construct(RealDate, Array.prototype.slice.call(arguments), new.target);
  };
  FakeDate.prototype = RealDate.prototype;
  Object.defineProperty(RealDate.prototype, "constructor", {value: FakeDate, writable: true, configurable: true});
  FakeDate.now = function now() { return nowMs; };
  FakeDate.parse = RealDate.parse;
  FakeDate.UTC = RealDate.UTC;
  g.Date = FakeDate;

  function format(value) {
    if (typeof value === "string") { return value; }
    try {
      var s = stringify(value);
      return s === undefined ? String(value) : s;
    } catch (e) {
      return String(value);
    }
  }
  function log() {
    if (logSize >= LOG_LIMIT) { return; }
    var line = Array.prototype.map.call(arguments, format).join(" ");
    if (logSize + line.length > LOG_LIMIT) { line = line.slice(0, LOG_LIMIT - logSize); }
    logSize += line.length + 1;
    logs.push(line);
  }
  var consoleObject = {log: log, info: log, warn: log, error: log, debug: log, trace: log};
  g.print = log;
  g.console = consoleObject;

  // Sloppy-mode invoker (created by an indirect eval, so it is not strict): the direct eval gives the
  // completion value of the source (IIFE or plain expression) and keeps its `var`s local to one call.
  var invoke = (0, eval)(
    "(function (guest, request, session, event, entity, flow, params, tenant, print, console) {" +
    " return eval(arguments[10]); })"
  );
  var invokeBody = (0, eval)(
    "(function (guest, request, session, event, entity, flow, params, tenant, print, console) {" +
    " return eval('(function () {' + arguments[10] + '\\n}).call(this)'); })"
  );
  var bodySources = new Set();

  var ENGINE_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError, URIError, EvalError];
  function describe(error) {
    for (var i = 0; i < ENGINE_ERRORS.length; i++) {
      if (error instanceof ENGINE_ERRORS[i]) {
        // Engine messages may quote data ("… is not valid JSON"): drop quoted text, keep the shape.
        var message = String(error.message).replace(/"[^"]*"|'[^']*'|`[^`]*`/g, "…").slice(0, 200);
        return ENGINE_ERRORS[i].name + ": " + message;
      }
    }
    if (error instanceof Error) { return "Error thrown by the condition (message withheld)"; }
    return "Uncaught " + (error === null ? "null" : typeof error) + " thrown by the condition";
  }

  function seal(target, seen) {
    if (target === null || (typeof target !== "object" && typeof target !== "function")) { return; }
    if (target === g || seen.has(target)) { return; }
    seen.add(target);
    var keys = Reflect.ownKeys(target);
    for (var i = 0; i < keys.length; i++) {
      var d = Object.getOwnPropertyDescriptor(target, keys[i]);
      if (d === undefined) { continue; }
      if (hasOwn.call(d, "value")) { seal(d.value, seen); } else { seal(d.get, seen); seal(d.set, seen); }
    }
    seal(Object.getPrototypeOf(target), seen);
    Object.freeze(target);
  }

  function cleanGlobals(baseline) {
    var names = ownNames(g);
    for (var i = 0; i < names.length; i++) {
      if (!baseline.has(names[i])) { try { delete g[names[i]]; } catch (e) { /* non-configurable */ } }
    }
    var symbols = ownSymbols(g);
    for (var j = 0; j < symbols.length; j++) {
      if (!baseline.has(symbols[j])) { try { delete g[symbols[j]]; } catch (e) { /* non-configurable */ } }
    }
  }

  function check(source) {
    try {
      new RealFunction(source);  // parses as a function body (also accepts top-level `return`), never runs
      return null;
    } catch (e) {
      return (e instanceof SyntaxError ? "SyntaxError: " : "Error: ") + String(e.message).slice(0, 300);
    }
  }

  function withAliases(session) {
    if (session !== null && typeof session === "object" && session.interactions === undefined) {
      session.interactions = session.events;  // Sitecore-era alias (§5.5)
    }
    return session;
  }

  function isoMillis(match, head, fraction) {
    return '"' + head + "." + ((fraction || "") + "000").slice(0, 3) + 'Z"';
  }

  function normalise(text) {
    text = text.replace(ISO_UTC_6, "$1");
    return ISO_UTC_OTHER.test(text) ? text.replace(ISO_UTC, isoMillis) : text;
  }

  function run(source, payload, paramsJson) {
    var input = parse(normalise(payload));
    var params = parse(paramsJson);
    nowMs = input.now;
    logs = [];
    logSize = 0;
    var guest = input.guest || {};
    if (Array.isArray(guest.sessions)) { guest.sessions.forEach(withAliases); }
    if (guest.extensions === undefined) { guest.extensions = guest.dataExtensions; }
    var event = input.event === undefined ? null : input.event;
    var args = [
      guest, input.request || {}, withAliases(input.session === undefined ? null : input.session), event,
      event !== null && typeof event === "object" && event.message !== undefined ? event.message : null,
      input.flow === undefined ? null : input.flow, params || {}, input.tenant || {},
      log, consoleObject, source
    ];
    var error = null;
    var truthy = false;
    var value;
    var json;
    try {
      if (bodySources.has(source)) {
        value = invokeBody.apply(undefined, args);
      } else {
        try {
          value = invoke.apply(undefined, args);
        } catch (e) {
          // A top-level `return` is a parse error, raised before anything ran: retry as a function body.
          if (!(e instanceof SyntaxError) || e.message !== "Illegal return statement") { throw e; }
          if (bodySources.size > 1000) { bodySources.clear(); }
          bodySources.add(source);
          value = invokeBody.apply(undefined, args);
        }
      }
      if (value !== null && (typeof value === "object" || typeof value === "function") &&
          typeof value.then === "function") {
        error = "the condition returned a Promise (conditions must be synchronous)";
      } else {
        truthy = !!value;
        json = value === undefined ? undefined : stringify(value);
        if (json !== undefined && json.length > RESULT_LIMIT) {
          error = "the return value exceeds 256 KiB once serialised";
          json = undefined;
        }
      }
    } catch (e) {
      error = describe(e);
      json = undefined;
    } finally {
      cleanGlobals(baseline);
    }
    if (error !== null) { truthy = false; }
    return '{"e":' + stringify(error) + ',"t":' + (truthy ? "true" : "false") + ',"l":' + stringify(logs) +
      ',"v":' + (json === undefined ? "null" : json) + "}";
  }

  g.__ik_run = run;
  g.__ik_check = check;

  var seen = new Set();
  var roots = [
    Object.getPrototypeOf(function* () { /* generator */ }), Object.getPrototypeOf(async function () { /* a */ }),
    Object.getPrototypeOf(async function* () { /* ag */ }), [][Symbol.iterator](), new Map().entries(),
    new Set().values(), ""[Symbol.iterator](), /a/g[Symbol.matchAll]("a"), (function* () { /* g */ })(),
    consoleObject
  ];
  roots.forEach(function (root) { seal(root, seen); });
  ownNames(g).forEach(function (name) {
    var d = Object.getOwnPropertyDescriptor(g, name);
    if (d !== undefined && hasOwn.call(d, "value")) { seal(d.value, seen); }
  });
  var baseline = new Set(ownNames(g));
  ownSymbols(g).forEach(function (s) { baseline.add(s); });
  ownNames(g).forEach(function (name) {
    var d = Object.getOwnPropertyDescriptor(g, name);
    if (d === undefined) { return; }
    if (hasOwn.call(d, "value")) {
      Object.defineProperty(g, name, {writable: false, configurable: false});
    } else if (d.configurable) {
      Object.defineProperty(g, name, {configurable: false});
    }
  });
})(globalThis);
