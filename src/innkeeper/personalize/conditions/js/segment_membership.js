// The guest is / is not a member of any of the segments (by ref or friendlyId).
// params: is, segments (list)
(function () {
  var member = ikList(guest.segmentMemberships).some(function (m) {
    return m !== null && typeof m === "object" &&
      (params.segments.indexOf(m.ref) !== -1 || params.segments.indexOf(m.friendlyId) !== -1);
  });
  return ikPositive(params.is, member);
})();
