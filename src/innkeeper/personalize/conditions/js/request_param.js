// Request parameter at a dot path (in request.params) op value.
// params: path, op, value
(function () {
  return ikMatch(ikPath(request.params, params.path), params.op, params.value);
})();
