// The total order value (sum of price, optionally only orders in `currency`) op n.
// params: op, n, currency (optional)
(function () {
  var currency = params.currency === null || params.currency === undefined ? null : String(params.currency).toLowerCase();
  var total = 0;
  ikOrders().forEach(function (o) {
    if (currency === null || (typeof o.currencyCode === "string" && o.currencyCode.toLowerCase() === currency)) {
      total += ikNum(o.price) || 0;
    }
  });
  return ikCompare(total, params.op, params.n);
})();
