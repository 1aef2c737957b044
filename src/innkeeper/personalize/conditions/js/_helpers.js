// Helpers shared by the JavaScript twins of the built-in conditions (personalize.md §6.4).
// Each built-in's JS source is its twin file preceded by the helpers it uses (see catalog.py), so a
// "convert to custom" copy is self-contained. They mirror conditions/_values.py line for line.
// Globals read: guest, request, session, event, params, tenant (tenant.timezone = the org time zone).

function ikPositive(polarity, result) {
  return polarity === "is" || polarity === "has" ? result : !result;
}

function ikStr(value) {
  return String(value);
}

function ikNum(value) {
  if (typeof value === "number") { return value === value ? value : null; }
  if (typeof value === "string" && /^[ \t]*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[ \t]*$/.test(value)) {
    return Number(value);
  }
  return null;
}

function ikCompare(left, op, right) {
  var a = ikNum(left), b = ikNum(right);
  if (a === null || b === null) { return false; }
  if (op === "=") { return a === b; }
  if (op === "!=") { return a !== b; }
  if (op === ">") { return a > b; }
  if (op === ">=") { return a >= b; }
  if (op === "<") { return a < b; }
  return a <= b;
}

function ikMatch(actual, op, expected) {
  if (op === "exists") { return actual !== undefined && actual !== null; }
  if (op === "not exists") { return actual === undefined || actual === null; }
  if (op.indexOf("not ") === 0) { return !ikMatch(actual, op.slice(4), expected); }
  if (Array.isArray(actual)) {
    return actual.some(function (item) { return ikMatch(item, op, expected); });
  }
  if (actual === undefined || actual === null || typeof actual === "object") { return false; }
  if (op === ">" || op === ">=" || op === "<" || op === "<=") { return ikCompare(actual, op, expected); }
  if (op === "equals" && ikNum(actual) !== null && ikNum(expected) !== null) {
    return ikNum(actual) === ikNum(expected);
  }
  var text = ikStr(actual).toLowerCase(), wanted = ikStr(expected).toLowerCase();
  if (op === "equals") { return text === wanted; }
  if (op === "contains") { return text.indexOf(wanted) !== -1; }
  if (op === "starts with") { return text.slice(0, wanted.length) === wanted; }
  if (op === "ends with") { return wanted.length === 0 || text.slice(-wanted.length) === wanted; }
  if (op === "regex") { return new RegExp(ikStr(expected), "i").test(ikStr(actual)); }
  return false;
}

function ikPath(value, path) {
  if (!path) { return value; }
  var parts = path.split(".");
  for (var i = 0; i < parts.length; i++) {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      value = Object.prototype.hasOwnProperty.call(value, parts[i]) ? value[parts[i]] : null;
    } else if (Array.isArray(value) && /^\d+$/.test(parts[i]) && Number(parts[i]) < value.length) {
      value = value[Number(parts[i])];
    } else {
      return null;
    }
    if (value === undefined) { value = null; }
  }
  return value;
}

function ikMillis(value) {
  if (typeof value === "number") { return Math.trunc(value); }
  if (typeof value !== "string" || value === "") { return null; }
  var t = new Date(value).getTime();
  return t === t ? t : null;
}

function ikTruthy(value) {
  return !!value;
}

function ikList(value) {
  return Array.isArray(value) ? value : [];
}

function ikObjects(value) {
  return ikList(value).filter(function (item) { return item !== null && typeof item === "object"; });
}

function ikAllSessions() {
  var sessions = ikObjects(guest.sessions);
  if (session && !sessions.some(function (s) { return s.ref === session.ref; })) {
    return [session].concat(sessions);
  }
  return sessions;
}

function ikOtherSessions() {
  var sessions = ikObjects(guest.sessions);
  if (!session) { return sessions.slice(1); }
  return sessions.filter(function (s) { return s.ref !== session.ref; });
}

function ikEvents(s) {
  return s ? ikObjects(s.events) : [];
}

function ikLocalTime() {
  var parts = {};
  new Intl.DateTimeFormat("en-US", {
    timeZone: tenant.timezone || "UTC", hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
    weekday: "long", hour: "numeric", minute: "numeric"
  }).formatToParts(new Date(Date.now())).forEach(function (p) { parts[p.type] = p.value; });
  return {
    year: Number(parts.year), month: Number(parts.month), day: Number(parts.day),
    weekday: parts.weekday.toUpperCase(), hour: Number(parts.hour) % 24, minute: Number(parts.minute)
  };
}

function ikUserAgent() {
  var ua = request.headers ? request.headers["user-agent"] : null;
  return typeof ua === "string" && ua !== "" ? ua : null;
}

function ikDevice(ua) {
  if (/ipad|tablet|kindle|silk|playbook/i.test(ua) || (/android/i.test(ua) && ua.toLowerCase().indexOf("mobile") === -1)) {
    return "tablet";
  }
  if (/mobi|iphone|ipod|android|windows phone|blackberry|bb10|opera mini|iemobile/i.test(ua)) { return "mobile"; }
  return "desktop";
}

function ikOs(ua) {
  var rules = [
    [/windows phone/i, "Windows Phone"], [/iphone|ipad|ipod/i, "iOS"], [/android/i, "Android"],
    [/cros/i, "Chrome OS"], [/windows/i, "Windows"], [/mac os x|macintosh/i, "macOS"], [/linux/i, "Linux"]
  ];
  for (var i = 0; i < rules.length; i++) {
    if (rules[i][0].test(ua)) { return rules[i][1]; }
  }
  return "Other";
}

function ikIn(actual, values) {
  if (actual === undefined || actual === null || typeof actual === "object") { return false; }
  var text = ikStr(actual).toLowerCase();
  return values.some(function (v) { return text === v.toLowerCase(); });
}

function ikFirst(candidates) {
  for (var i = 0; i < candidates.length; i++) {
    if (candidates[i] !== undefined && candidates[i] !== null) { return candidates[i]; }
  }
  return null;
}

function ikWithin(value, days) {
  if (days === null || days === undefined) { return true; }
  var t = ikMillis(value);
  return t !== null && t >= Date.now() - days * 86400000;
}

function ikOrders() {
  return ikObjects(guest.orders);
}
