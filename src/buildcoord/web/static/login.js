// buildcoord login: `buildcoord up` prints /login#token=... so that the demo opens logged in.
// The token stays in the fragment (never sent in a URL), is taken out of the address bar, and
// is posted by the login form like a typed one.
(function () {
  "use strict";
  var match = /^#token=([^&]+)$/.exec(window.location.hash);
  if (!match) return;
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  var form = document.querySelector("form.login-form");
  if (!form) return;
  form.elements.token.value = decodeURIComponent(match[1]);
  form.submit();
})();
