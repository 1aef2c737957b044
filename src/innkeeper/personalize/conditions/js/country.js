// The visitor is / is not in one of the country values (request.geo.country, else request.params.geo.country).
// params: is, values (list)
(function () {
  var geo = request.geo && typeof request.geo === "object" ? request.geo : ikPath(request.params, "geo");
  var value = geo && typeof geo === "object" ? geo.country : null;
  return ikPositive(params.is, ikIn(value, params.values));
})();
