// The guest has / has not an email (guest.email, or a non-empty guest.emails).
// params: has ("has" | "has not")
(function () {
  var found = (typeof guest.email === "string" && guest.email !== "") ||
    (Array.isArray(guest.emails) && guest.emails.length > 0);
  return ikPositive(params.has, found);
})();
