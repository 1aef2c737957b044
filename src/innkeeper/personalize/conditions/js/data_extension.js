// Data extension name/key (case-insensitive): the value at path inside its values, op value.
// params: name, key (default "default"), path (optional dot path), op, value
(function () {
  var name = String(params.name).toLowerCase(), key = String(params.key || "default").toLowerCase();
  var found = null;
  var list = ikList(guest.dataExtensions);
  for (var i = 0; i < list.length; i++) {
    var ext = list[i];
    if (ext !== null && typeof ext === "object" && String(ext.name).toLowerCase() === name &&
        String(ext.key === undefined ? "default" : ext.key).toLowerCase() === key) {
      found = ext.values === undefined ? null : ext.values;
      break;
    }
  }
  var actual = found !== null ? ikPath(found, params.path || "") : null;
  return ikMatch(actual, params.op, params.value);
})();
