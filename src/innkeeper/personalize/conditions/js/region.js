// The visitor is / is not in one of the region values (request.geo.region, else request.params.geo.region).
// params: is, values (list)
(function () {
  var geo = request.geo && typeof request.geo === "object" ? request.geo : ikPath(request.params, "geo");
  var value = geo && typeof geo === "object" ? geo.region : null;
  return ikPositive(params.is, ikIn(value, params.values));
})();
