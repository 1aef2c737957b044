// The visitor is / is not in one of the city values (request.geo.city, else request.params.geo.city).
// params: is, values (list)
(function () {
  var geo = request.geo && typeof request.geo === "object" ? request.geo : ikPath(request.params, "geo");
  var value = geo && typeof geo === "object" ? geo.city : null;
  return ikPositive(params.is, ikIn(value, params.values));
})();
