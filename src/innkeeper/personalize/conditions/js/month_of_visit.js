// The visit is / is not in one of the months (JANUARY … DECEMBER), organization time zone.
// params: is, months (list)
(function () {
  var names = ["JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER",
    "OCTOBER", "NOVEMBER", "DECEMBER"];
  return ikPositive(params.is, params.months.indexOf(names[ikLocalTime().month - 1]) !== -1);
})();
