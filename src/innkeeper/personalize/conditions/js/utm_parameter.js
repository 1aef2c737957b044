// UTM parameter name op value: request.params.utm.<name>, request.params.utm_<name>, else session utm.
// params: name ("campaign" | "source" | "medium" | "content" | "term"), op, value
(function () {
  var p = request.params || {};
  var candidates = [ikPath(p, "utm." + params.name), ikPath(p, "utm_" + params.name),
    ikPath(session, "utm.utm_" + params.name), ikPath(session, "utm." + params.name)];
  var actual = ikFirst(candidates);
  return ikMatch(actual, params.op, params.value);
})();
