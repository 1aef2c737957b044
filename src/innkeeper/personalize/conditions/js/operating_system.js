// The visitor is / is not using one of the operating systems: User-Agent header, else session device.os.
// params: is, os (list of "Windows", "macOS", "iOS", "Android", "Linux", "Chrome OS", "Windows Phone", "Other")
(function () {
  var ua = ikUserAgent();
  var name = ua ? ikOs(ua) : ikPath(session, "device.os");
  return ikPositive(params.is, ikIn(name, params.os));
})();
