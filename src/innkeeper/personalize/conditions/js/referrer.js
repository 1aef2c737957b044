// The referrer op value: request.params.referrer, the Referer header, else session referrer.
// params: op, value
(function () {
  var actual = ikFirst([ikPath(request.params, "referrer"), ikPath(request.headers, "referer"),
    ikPath(session, "referrer")]);
  return ikMatch(actual, params.op, params.value);
})();
