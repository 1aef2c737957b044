// The language (request, else guest) is / is not one of the values; "en" also matches "en-GB".
// params: is, values (list)
(function () {
  var value = request.language || guest.language;
  if (typeof value !== "string" || value === "") { return ikPositive(params.is, false); }
  var text = value.toLowerCase();
  var found = params.values.some(function (v) {
    var w = v.toLowerCase();
    return text === w || text.indexOf(w + "-") === 0 || text.indexOf(w + "_") === 0;
  });
  return ikPositive(params.is, found);
})();
