// The visit is / is not on a day of the month op n, organization time zone.
// params: is, op ("=", "!=", ">", ">=", "<", "<="), n (1-31)
(function () {
  return ikPositive(params.is, ikCompare(ikLocalTime().day, params.op, params.n));
})();
