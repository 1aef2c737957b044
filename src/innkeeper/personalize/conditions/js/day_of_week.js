// The visit is / is not on one of the days (MONDAY … SUNDAY), organization time zone.
// params: is, days (list)
(function () {
  return ikPositive(params.is, params.days.indexOf(ikLocalTime().weekday) !== -1);
})();
