// The guest has / has not abandoned a cart (session cartType ABANDONED) in the last d days [revenue op n].
// params: has, days, op (optional), n (optional)
(function () {
  var found = ikAllSessions().some(function (s) {
    if (s.cartType !== "ABANDONED") { return false; }
    var ended = s.endedAt !== undefined && s.endedAt !== null ? s.endedAt : s.startedAt;
    if (!ikWithin(ended, params.days)) { return false; }
    return params.op === null || params.op === undefined ||
      ikCompare(ikNum(s.abandonedRevenue) || 0, params.op, params.n);
  });
  return ikPositive(params.has, found);
})();
