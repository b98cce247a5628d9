// buildcoord dashboard: the live stream, shared by every open tab of the dashboard.
//
// One tab at a time (the one holding the Web Lock "buildcoord-stream") opens the Server-Sent
// Events stream and passes what it hears to the other tabs over a BroadcastChannel: a browser
// opens at most six HTTP/1.1 connections to one host, and a stream per tab would use them up.
// Each stream event names a panel; every element with that data-panel asks htmx to refresh
// it. The top bar says whether the stream is live. Without Web Locks (a page not served over
// HTTPS or loopback) each tab opens its own stream.
(function () {
  "use strict";
  var main = document.getElementById("main");
  if (!main || !main.dataset.stream) return;
  var url = main.dataset.stream;
  var names = (main.dataset.panels || "").split(" ").filter(Boolean);
  var shared = "BroadcastChannel" in window && navigator.locks;
  var channel = shared ? new BroadcastChannel("buildcoord-stream") : null;
  var source = null;
  var delay = 1000;
  var state = "connecting";
  var caughtUp = false;

  var TEXT = { live: "Live", down: "Disconnected — reconnecting…", connecting: "Connecting…" };

  function show(next) {
    state = next;
    var element = document.getElementById("connection");
    if (!element) return;
    element.dataset.state = next;
    element.textContent = TEXT[next] || next;
  }

  function refresh(name) {
    var panels = document.querySelectorAll('[data-panel="' + name + '"]');
    for (var i = 0; i < panels.length; i++) window.htmx.trigger(panels[i], "refresh");
  }

  function tell(message) {
    if (channel) channel.postMessage(message);
  }

  // The leader's stream: reopened after a pause that doubles up to 30 s while it fails.
  function open() {
    source = new EventSource(url);
    source.onopen = function () {
      delay = 1000;
      show("live");
      tell({ state: "live" });
    };
    source.onerror = function () {
      source.close();
      source = null;
      show("down");
      tell({ state: "down" });
      window.setTimeout(open, delay);
      delay = Math.min(delay * 2, 30000);
    };
    names.forEach(function (name) {
      source.addEventListener(name, function () {
        refresh(name);
        tell({ panel: name });
      });
    });
  }

  if (!shared) {
    open();
    return;
  }
  var leading = false;
  channel.onmessage = function (event) {
    var message = event.data || {};
    if (leading) {
      if (message.hello) tell({ state: state });
      return;
    }
    if (message.state) {
      show(message.state);
      if (!caughtUp) {
        caughtUp = true; // what changed between this page's render and its joining
        names.forEach(refresh);
      }
    }
    if (message.panel) refresh(message.panel);
  };
  navigator.locks.request("buildcoord-stream", function () {
    leading = true;
    open(); // its first events name every panel: this page catches up
    return new Promise(function () {}); // held until the page goes away
  });
  tell({ hello: true });
})();
