// The operations console's only script: keeps the page's #live part current from the server-sent events
// of /dashboard/events (one stream per page; the browser reconnects by itself when it drops, and the
// header says so). Every page works without it.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var status = document.getElementById("updated");
  if (!live || !live.dataset.events || !window.EventSource) { return; }
  window.__console = {opens: 0, updates: 0, errors: 0};
  var source = new EventSource(live.dataset.events);
  source.addEventListener("open", function () {
    window.__console.opens += 1;
    status.textContent = "live";
    status.className = "";
  });
  source.addEventListener("panels", function (event) {
    var data = JSON.parse(event.data);
    live.innerHTML = data.html;
    window.__console.updates += 1;
    status.textContent = "updated " + new Date().toLocaleTimeString();
    status.className = "";
  });
  source.addEventListener("error", function () {
    window.__console.errors += 1;
    if (source.readyState === EventSource.CLOSED) {
      status.textContent = "disconnected: reload the page (signed out?)";
    } else {
      status.textContent = "connection lost, reconnecting…";
    }
    status.className = "warn";
  });
})();
