// The current session has / has not an event of one of the types (case-insensitive).
// params: has, types (list, e.g. ["ADD", "CHECKOUT"])
(function () {
  var wanted = params.types.map(function (t) { return t.toUpperCase(); });
  var found = ikEvents(session).some(function (e) {
    return typeof e.type === "string" && wanted.indexOf(e.type.toUpperCase()) !== -1;
  });
  return ikPositive(params.has, found);
})();
