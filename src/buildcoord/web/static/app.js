// buildcoord dashboard: says whether the live stream is connected. Everything else is htmx.
(function () {
  "use strict";
  function show(state, text) {
    var element = document.getElementById("connection");
    if (!element) return;
    element.dataset.state = state;
    element.textContent = text;
  }
  document.addEventListener("htmx:sseOpen", function () {
    show("live", "Live");
  });
  document.addEventListener("htmx:sseError", function () {
    show("down", "Disconnected — reconnecting…");
  });
  document.addEventListener("htmx:sseClose", function () {
    show("down", "Disconnected — reconnecting…");
  });
  // A panel whose refresh failed (the coordinator is restarting) keeps what it showed.
  document.addEventListener("htmx:responseError", function () {
    show("down", "Disconnected — reconnecting…");
  });
  document.addEventListener("htmx:sendError", function () {
    show("down", "Disconnected — reconnecting…");
  });
})();
