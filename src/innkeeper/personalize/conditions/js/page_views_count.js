// The guest has / has not viewed op n pages (WEB sessions, VIEW events) in the last `days` days (§6.1 sample).
// params: has, op (default ">="), n, days
(function () {
  var now = Date.now(), views = 0;
  ikAllSessions().forEach(function (s) {
    if (s.sessionType !== "WEB") { return; }
    ikEvents(s).forEach(function (e) {
      var t = ikMillis(e.createdAt);
      if (e.type === "VIEW" && ikTruthy(ikPath(e.arbitraryData, "page")) && t !== null &&
          (now - t) / 86400000 <= params.days) { views++; }
    });
  });
  return ikPositive(params.has, ikCompare(views, params.op, params.n));
})();
