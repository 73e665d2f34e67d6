// Keyboard shortcuts, a question before a no-show or a cancel, and a quiet refresh of the queue
// panel that keeps the focus where it was. Everything also works without JS.
(function () {
  "use strict";
  var panel = document.getElementById("panel");
  var FOCUS_KEY = "seed.console.focus";

  // Single-key shortcuts, unless the person switched them off on My account (WCAG 2.1.4).
  var keys = { n: "#call-next", r: "#current-actions [data-action=recall]", s: "#current-actions [data-action=start]", c: "#current-actions [data-action=complete]" };
  if (panel && panel.dataset.shortcuts === "on") {
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
      var tag = (event.target.tagName || "").toLowerCase();
      if (tag === "input" || tag === "select" || tag === "textarea" || event.target.isContentEditable) return;
      if (document.querySelector("dialog[open]")) return;
      var selector = keys[(event.key || "").toLowerCase()];
      if (!selector) return;
      var target = document.querySelector(selector);
      if (!target) return;
      event.preventDefault();
      if (target.tagName.toLowerCase() === "form") target.requestSubmit(); else target.click();
    });
  }

  // --- which control has the focus, by a name that survives the panel being drawn again ---------
  function keyOf(element) {
    if (!panel || !element || element === panel || !panel.contains(element)) return null;
    if (element.id) return { id: element.id };
    // No id of its own: its place among its kind inside the nearest ancestor that has one.
    var holder = element.parentElement.closest("[id]");
    if (!holder || !panel.contains(holder)) holder = panel;
    var same = holder.querySelectorAll(element.tagName);
    return { holder: holder === panel ? null : holder.id, tag: element.tagName,
             index: Array.prototype.indexOf.call(same, element) };
  }

  function find(key) {
    if (!key) return null;
    if (key.id) return document.getElementById(key.id);
    var holder = key.holder ? document.getElementById(key.holder) : panel;
    return holder ? holder.querySelectorAll(key.tag)[key.index] || null : null;
  }

  function focusOn(element) {
    if (!element) return false;
    var folded = element.closest("details:not([open])");
    if (folded && element.tagName !== "SUMMARY") return false;
    element.focus({ preventScroll: true });
    return document.activeElement === element;
  }

  // After one's own action the page loads again: the focus goes to the new next step (after the
  // big button) or back to the control used; nothing moves the focus on a plain visit.
  if (panel) {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (event.defaultPrevented || !form.closest || form.getAttribute("method") === "dialog") return;
      var used = event.submitter || form.querySelector("button[type=submit]");
      var key = used && used.hasAttribute("data-primary") ? "primary" : JSON.stringify(keyOf(used));
      try { sessionStorage.setItem(FOCUS_KEY, key); } catch (e) { /* private mode: no memory, no harm */ }
    });
    var remembered = null;
    try { remembered = sessionStorage.getItem(FOCUS_KEY); sessionStorage.removeItem(FOCUS_KEY); } catch (e) { /* as above */ }
    if (remembered && !document.getElementById("confirm-step")) {
      var back = remembered === "primary" ? null : find(JSON.parse(remembered));
      if (!focusOn(back)) focusOn(panel.querySelector("[data-primary]"));
    }
  }

  // --- a question before a no-show or a cancel ----------------------------------------------
  var dialog = document.getElementById("confirm-dialog");
  if (dialog && typeof dialog.showModal === "function") {
    var asking = null;
    document.addEventListener("submit", function (event) {
      var form = event.target;
      if (!form.dataset || !form.dataset.confirm || form.querySelector("input[name=confirm]")) return;
      event.preventDefault();
      asking = form;
      document.getElementById("confirm-dialog-question").textContent = form.dataset.confirm;
      document.getElementById("confirm-dialog-yes").textContent = form.dataset.confirmYes;
      dialog.returnValue = "";
      dialog.showModal();  // keeps the focus inside; gives it back to the button used when closed
    }, true);
    dialog.addEventListener("close", function () {
      var form = asking;
      asking = null;
      if (dialog.returnValue !== "yes" || !form || !document.contains(form)) return;
      var yes = document.createElement("input");
      yes.type = "hidden"; yes.name = "confirm"; yes.value = "1";
      form.appendChild(yes);
      try { sessionStorage.setItem(FOCUS_KEY, "primary"); } catch (e) { /* as above */ }
      form.submit();
    });
  }

  // --- the panel, fetched again when the server says the branch's queue changed (staff/live.py),
  // not on a timer; only while the socket is down does a slow poll stand in for it.
  if (!panel) return;
  var url = window.location.pathname.replace(/\/$/, "") + "/panel";
  var FALLBACK_MS = 30000;
  var api = window.seedConsole = { fetches: 0, changes: 0, connected: false, polling: false, restored: 0 };
  var inFlight = false, again = false, deferred = false, fallback = null;

  // A button pressed and not yet released: drawn again in between, the release would land on a
  // new button and the click be lost (mouse, pen or finger alike).
  var pressing = false;
  panel.addEventListener("pointerdown", function () { pressing = true; });
  function released() {
    if (!pressing) return;
    pressing = false;
    // After the click (and the submit it starts) has run: fetch what was held back.
    setTimeout(function () { if (deferred && !choosing()) { deferred = false; refresh(); } }, 0);
  }
  document.addEventListener("pointerup", released, true);
  document.addEventListener("pointercancel", released, true);
  window.addEventListener("blur", released);  // let go outside the window: never stuck waiting

  function choosing() {  // the user is in the middle of choosing something in the panel
    var active = document.activeElement;
    if (pressing) return true;
    if (dialog && dialog.open) return true;  // the question names a ticket: keep its form
    return !!(active && panel.contains(active) && active.tagName !== "BODY" && active.tagName !== "BUTTON"
              && active.tagName !== "SUMMARY" && active.tagName !== "A" && active !== panel);
  }

  // Draw the new panel, keeping what the person had: the focused control and any opened "More".
  function replace(html) {
    var focused = keyOf(document.activeElement);
    var opened = Array.prototype.map.call(panel.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    panel.innerHTML = html;
    opened.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
    if (!focused) return;  // the focus was elsewhere: leave it there
    if (!focusOn(find(focused))) {  // gone (the ticket was called elsewhere): stay in the panel, not on <body>
      panel.setAttribute("tabindex", "-1");
      panel.focus({ preventScroll: true });
    }
    api.restored += 1;
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
        if (choosing()) deferred = true; else replace(html);
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
  if (dialog) dialog.addEventListener("close", function () {
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
