// The guest has placed op n orders (within the last `days` days when given).
// params: op, n, days (optional)
(function () {
  var count = ikOrders().filter(function (o) { return ikWithin(o.orderedAt, params.days); }).length;
  return ikCompare(count, params.op, params.n);
})();
