/* The send's status panel follows a running send: it polls the status endpoint every second and
   updates the figures; when the send ends it reloads the page once (the report lists failures).
   Without this script the page shows the figures as they were when it loaded. */
(function () {
  "use strict";
  var panel = document.getElementById("send-status");
  if (!panel || !window.fetch || panel.getAttribute("data-phase") !== "running") return;
  var url = panel.getAttribute("data-status-url");

  function field(name) { return panel.querySelector('[data-field="' + name + '"]'); }

  function show(s) {
    field("phase").textContent = s.phase;
    field("phase").className = "badge " + (s.running ? "sending" : s.finished ? "sent" : "failed");
    field("summary").textContent = s.running && !s.total ? "starting…" :
      s.done + " of " + s.total + " done" + (s.running && s.rate ? ", " + s.rate.toFixed(1) + " msg/s" : "");
    var bar = field("progress");
    bar.max = s.total || 1;
    bar.value = s.done;
    bar.textContent = s.percent + "%";
    Object.keys(s.counts).forEach(function (state) {
      var dd = panel.querySelector('[data-count="' + state + '"]');
      if (!dd) return;
      dd.textContent = s.counts[state];
      dd.parentNode.classList.toggle("zero", !s.counts[state]);
    });
    var err = field("error");
    err.textContent = s.error || "";
    err.hidden = !s.error;
  }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (s) {
        show(s);
        if (s.running) { setTimeout(poll, 1000); } else { location.reload(); }
      })
      .catch(function () { setTimeout(poll, 5000); });    // the server restarting: try again later
  }
  setTimeout(poll, 1000);
}());
