// Guest field (dot path such as "gender" or "country") op value.
// params: field, op, value
(function () {
  return ikMatch(ikPath(guest, params.field), params.op, params.value);
})();
