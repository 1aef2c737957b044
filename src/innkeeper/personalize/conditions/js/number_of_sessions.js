// The guest has had op n sessions (started within the last `days` days when given).
// params: op, n, days (optional)
(function () {
  var count = ikAllSessions().filter(function (s) { return ikWithin(s.startedAt, params.days); }).length;
  return ikCompare(count, params.op, params.n);
})();
