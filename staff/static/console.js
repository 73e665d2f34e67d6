// Keyboard shortcuts and a quiet refresh of the queue panel. Everything also works without JS.
(function () {
  "use strict";
  var keys = { n: "#call-next", r: "#current-actions [data-action=recall]", s: "#current-actions [data-action=start]", c: "#current-actions [data-action=complete]" };
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") return;
    var selector = keys[event.key.toLowerCase()];
    if (!selector) return;
    var target = document.querySelector(selector);
    if (!target) return;
    event.preventDefault();
    if (target.tagName.toLowerCase() === "form") target.requestSubmit(); else target.click();
  });

  // The panel is fetched again when the server says the branch's queue changed (staff/live.py),
  // not on a timer; only while the socket is down does a slow poll stand in for it.
  var panel = document.getElementById("panel");
  if (!panel) return;
  var url = window.location.pathname.replace(/\/$/, "") + "/panel";
  var FALLBACK_MS = 30000;
  var api = window.seedConsole = { fetches: 0, changes: 0, connected: false, polling: false };
  var inFlight = false, again = false, deferred = false, fallback = null;

  function choosing() {  // the user is in the middle of choosing something in the panel
    var active = document.activeElement;
    return !!(active && panel.contains(active) && active.tagName !== "BODY" && active.tagName !== "BUTTON");
  }

  // A burst of changes costs at most one fetch in flight and one more after it.
  function refresh() {
    if (choosing()) { deferred = true; return; }
    if (inFlight) { again = true; return; }
    inFlight = true;
    api.fetches += 1;
    fetch(url, { credentials: "same-origin" })
      .then(function (r) {
        // Redirected (the session ended) or 409 (no counter any more): the page itself says what to do.
        if (r.redirected || r.status === 409) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        if (choosing()) deferred = true; else panel.innerHTML = html;
      })
      .catch(function () {})
      .then(function () {
        inFlight = false;
        if (again) { again = false; refresh(); }
      });
  }

  panel.addEventListener("focusout", function () {
    // After the event the focus has landed: fetch what was held back once it is out of the panel.
    setTimeout(function () { if (deferred && !choosing()) { deferred = false; refresh(); } }, 0);
  });

  // Offline, a poll every 30 s stands in for the pushes; online, one a minute still brings what
  // no queue change announces (the modem's state, today's appointments).
  var QUIET_MS = 60000;
  function poll(on) {
    if (fallback !== null) clearInterval(fallback);
    fallback = setInterval(refresh, on ? FALLBACK_MS : QUIET_MS);
    api.polling = on;
  }

  if (typeof io === "undefined") { poll(true); return; }
  var socket = api.socket = io("/console", { auth: { branch: Number(panel.dataset.branch) },
                                             transports: ["websocket", "polling"] });
  socket.on("changed", function () { api.changes += 1; refresh(); });
  socket.on("connect", function () {
    api.connected = true;
    poll(false);
    // A change between the page's rendering (or the socket's loss) and this moment was told to
    // nobody here: one fetch closes that gap.
    refresh();
  });
  function offline() { api.connected = false; poll(true); }
  socket.on("disconnect", offline);
  socket.on("connect_error", offline);
})();
