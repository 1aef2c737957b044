// Trigger entity (event.message) attribute at a dot path op value.
// params: path, op, value
(function () {
  var message = event ? event.message : null;
  return ikMatch(ikPath(message, params.path), params.op, params.value);
})();
