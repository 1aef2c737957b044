// The current session's cart is / is not empty; with op and n: its value (sum of price × quantity) op n.
// params: is, op (optional), n (optional)
(function () {
  var cart = session ? ikList(session.cart) : [];
  if (params.op === null || params.op === undefined) { return ikPositive(params.is, cart.length === 0); }
  var total = 0;
  cart.forEach(function (line) {
    if (line === null || typeof line !== "object") { return; }
    var quantity = ikNum(line.quantity);
    total += (ikNum(line.price) || 0) * (quantity === null ? 1 : quantity);
  });
  return ikPositive(params.is, ikCompare(total, params.op, params.n));
})();
