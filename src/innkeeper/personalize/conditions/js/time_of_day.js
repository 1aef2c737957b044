// The visit is / is not before / after a time (HH:MM) in the organization's time zone.
// params: is ("is" | "is not"), when ("before" | "after"), time ("HH:MM")
(function () {
  var local = ikLocalTime();
  var minutes = local.hour * 60 + local.minute;
  var hm = params.time.split(":");
  var limit = Number(hm[0]) * 60 + Number(hm[1]);
  var result = params.when === "before" ? minutes < limit : minutes >= limit;
  return ikPositive(params.is, result);
})();
