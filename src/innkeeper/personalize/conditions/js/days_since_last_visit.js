// Whole days since the previous session ended (or started) op n; false when there is none.
// params: op, n
(function () {
  var previous = ikOtherSessions();
  if (previous.length === 0) { return false; }
  var t = ikMillis(previous[0].endedAt) || ikMillis(previous[0].startedAt);
  if (t === null) { return false; }
  return ikCompare(Math.floor((Date.now() - t) / 86400000), params.op, params.n);
})();
