// The visitor is / is not using one of the device types: User-Agent header, else session device.type.
// params: is, devices (list of "mobile" | "desktop" | "tablet")
(function () {
  var ua = ikUserAgent();
  var kind = ua ? ikDevice(ua) : ikPath(session, "device.type");
  return ikPositive(params.is, ikIn(kind, params.devices));
})();
