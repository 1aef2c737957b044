// The point of sale (request, else current session) is / is not one of the values.
// params: is, values (list)
(function () {
  var pos = request.pointOfSale || ikPath(session, "pointOfSale");
  return ikPositive(params.is, ikIn(pos, params.values));
})();
