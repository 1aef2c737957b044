// This is / is not the guest's first session (no session other than the current one).
// params: is
(function () {
  return ikPositive(params.is, ikOtherSessions().length === 0);
})();
