// The channel (request, else current session) is / is not one of the values.
// params: is, values (list)
(function () {
  var value = request.channel || ikPath(session, "channel");
  return ikPositive(params.is, ikIn(value, params.values));
})();
