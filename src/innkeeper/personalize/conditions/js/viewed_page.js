// The guest has / has not viewed (count times) a page whose URL op value, in the current session or last d days.
// params: has, op ("equals" | "contains" | "starts with" | "ends with" | "regex"), value, count (default 1),
//         scope ("session" | "days"), days
(function () {
  var events;
  if (params.scope === "session") {
    events = ikEvents(session);
  } else {
    events = [];
    ikAllSessions().forEach(function (s) {
      ikEvents(s).forEach(function (e) { if (ikWithin(e.createdAt, params.days)) { events.push(e); } });
    });
  }
  var views = events.filter(function (e) {
    var page = e.page !== undefined && e.page !== null ? e.page : ikPath(e.arbitraryData, "page");
    return e.type === "VIEW" && ikMatch(page, params.op, params.value);
  }).length;
  return ikPositive(params.has, views >= params.count);
})();
