// The holdfast console's only script: every few seconds, fetch the page again and replace the
// parts marked data-live (counts, charts, redrive progress), unless the reader is typing.
// Everything works without it; it only saves pressing reload.
(function () {
  "use strict";
  var PERIOD_MS = 5000;
  function busy() {
    var active = document.activeElement;
    return active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
  }
  function refresh() {
    var live = document.querySelectorAll("[data-live]");
    if (live.length === 0 || busy() || document.hidden) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text === null) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelectorAll("[data-live]");
        if (fresh.length !== live.length) return;
        for (var i = 0; i < live.length; i++) live[i].innerHTML = fresh[i].innerHTML;
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, PERIOD_MS);
})();
