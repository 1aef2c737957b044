// The guest is / is not a customer (or visitor), from guest.guestType.
// params: is, type ("customer" | "visitor")
(function () {
  var value = guest.guestType;
  return ikPositive(params.is, typeof value === "string" && value.toLowerCase() === params.type);
})();
