// The guest has / has not purchased an item whose field op value (in orders of the last d days when given).
// params: has, field ("productId" | "type" | "name"), op, value, days (optional)
(function () {
  var found = ikOrders().some(function (o) {
    if (!ikWithin(o.orderedAt, params.days)) { return false; }
    return ikList(o.orderItems).some(function (item) {
      return item !== null && typeof item === "object" && ikMatch(item[params.field], params.op, params.value);
    });
  });
  return ikPositive(params.has, found);
})();
