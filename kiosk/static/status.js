// The customer's status page: this ticket only, pushed over Socket.IO (/status) as it changes.
// Without a socket (it dropped, or the client script is missing) the page asks every 30 s instead.
// Its buttons (running late, cancel) post to the server, which answers in the ticket's language;
// the new status then arrives by the same push (or from the answer, when there is no socket).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("status-data").textContent), words = data.words;
  var POLL_MS = 30000, poller = null, live = null, busy = false;
  var $ = function (id) { return document.getElementById(id); };
  var PARTS = [{ action: "late", opener: "late-open", panel: "late-panel" },
               { action: "cancel", opener: "cancel-open", panel: "cancel-panel" }];
  function allows(action) { return ((window.seedStatus || data.status).actions || []).indexOf(action) !== -1; }
  function fill(text, values) { return text.replace(/%\((\w+)\)s/g, function (_, k) { return values[k]; }); }

  // The time now on the branch's clock, in the ticket's language, 24-hour: never the phone's own zone or habit.
  var clockFormat = (function () {
    var options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    try {
      return new Intl.DateTimeFormat(data.language, Object.assign({ timeZone: data.timezone }, options));
    } catch (e) {  // a zone this browser does not know
      return new Intl.DateTimeFormat(data.language, options);
    }
  })();
  function stamp() {
    $("updated").textContent = fill(words.updated, { time: clockFormat.format(new Date()) });
  }

  function stateText(status) {
    if (status.status === "waiting") {
      // Nobody ahead: "you're next", never "0 people ahead, about 0 min".
      if (status.ahead === 0) { return words.next; }
      return fill(words.ahead, { count: status.ahead }) + " · " + fill(words.wait, { minutes: status.estimated_wait_minutes });
    }
    if (status.status === "called") { return fill(words.called, { counter: status.counter }); }
    if (status.status === "serving") { return fill(words.serving, { counter: status.counter }); }
    if (status.status === "held") { return words.held; }
    if (status.status === "cancelled") { return words.cancelled; }
    return words.finished;
  }

  // A part of the page hidden while it holds the focus would drop the focus on <body>: it goes to the state line.
  function hide(element) {
    if (element.hidden) { return; }
    var had = element.contains(document.activeElement);
    element.hidden = true;
    if (had) { $("state").focus(); }
  }

  function panelOpen() { return PARTS.some(function (part) { return !$(part.panel).hidden; }); }
  function showActions() {
    PARTS.forEach(function (part) {
      if (!allows(part.action)) {
        hide($(part.panel));
        $(part.opener).setAttribute("aria-expanded", "false");
      }
    });
    var open = panelOpen();  // an open question stands alone: the other buttons wait until it is answered
    PARTS.forEach(function (part) {
      if (!allows(part.action) || open) { hide($(part.opener)); } else { $(part.opener).hidden = false; }
    });
  }

  function render(status) {
    window.seedStatus = status;
    $("state").textContent = stateText(status);
    $("late-until").textContent = status.late_until ? fill(words.late_until, { time: status.late_until }) : "";
    $("late-until").hidden = !status.late_until;
    showActions();
    stamp();
  }

  // --- the buttons: a question (panel) opens in their place; answered or dismissed, they come back -------
  function open(opener, panel) {
    $("action-message").textContent = "";
    $(opener).setAttribute("aria-expanded", "true");
    $(panel).hidden = false;
    showActions();
    $(panel).querySelector("button").focus();
  }
  function close(focusOpener) {
    var was = PARTS.filter(function (part) { return !$(part.panel).hidden; })[0];
    if (!was) { return; }
    $(was.panel).hidden = true;
    $(was.opener).setAttribute("aria-expanded", "false");
    showActions();
    if (focusOpener && !$(was.opener).hidden) { $(was.opener).focus(); }
  }

  function act(url, body) {
    if (busy) { return; }
    busy = true;
    $("action-message").textContent = "";
    fetch(url, {
      method: "POST", cache: "no-store", credentials: "omit",
      headers: { "Content-Type": "application/json", "X-Requested-With": "fetch" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(function (answer) { return { ok: response.ok, answer: answer }; });
    }).then(function (result) {
      busy = false;
      if (!result.ok) {
        $("action-message").textContent = result.answer.message || words.failed;
        return;
      }
      close();
      $("state").focus();
      // Connected, the push brings the new status (it may have already); otherwise take the answer's.
      if (!(live && live.connected)) { render(result.answer.status); }
    }).catch(function () {
      busy = false;
      $("action-message").textContent = words.failed;
    });
  }

  $("late-open").addEventListener("click", function () { open("late-open", "late-panel"); });
  $("cancel-open").addEventListener("click", function () { open("cancel-open", "cancel-panel"); });
  $("late-back").addEventListener("click", function () { close(true); });
  $("cancel-no").addEventListener("click", function () { close(true); });
  $("cancel-yes").addEventListener("click", function () { act(data.cancel_url, { confirm: true }); });
  Array.prototype.forEach.call(document.querySelectorAll("#late-panel [data-minutes]"), function (button) {
    button.addEventListener("click", function () { act(data.late_url, { minutes: Number(button.dataset.minutes) }); });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { close(true); }
  });

  // --- keeping current --------------------------------------------------------------------------------
  function refresh() {
    fetch(data.url, { cache: "no-store" }).then(function (r) { return r.json(); }).then(render)
      .catch(function () { $("updated").textContent = words.offline; });
  }
  function poll(on) {
    if (on && poller === null) {
      poller = setInterval(refresh, POLL_MS);
    } else if (!on && poller !== null) {
      clearInterval(poller);
      poller = null;
    }
  }
  // The heading and the service name: smaller rather than beyond two lines (fit.js), at every size.
  function fitLabels() { window.seedFit.all("main h1, main .ticket-service"); }
  fitLabels();
  window.addEventListener("resize", fitLabels);
  if (document.fonts) { document.fonts.addEventListener("loadingdone", fitLabels); }

  render(data.status);
  if (typeof window.io !== "function") {
    poll(true);
    return;
  }
  live = window.seedStatusLive = { connected: false, connects: 0, pushes: 0 };
  var socket = live.socket = window.io("/status", { auth: { token: data.token }, transports: ["websocket", "polling"] });
  socket.on("connect", function () { live.connected = true; live.connects += 1; poll(false); });  // the server sends the status at once
  socket.on("disconnect", function () { live.connected = false; poll(true); });
  socket.on("connect_error", function () { live.connected = false; poll(true); });
  socket.on("status", function (status) { live.pushes += 1; render(status); });
  // Connected, the page would have heard of any change: say it is current without asking the server.
  setInterval(function () { if (live.connected) stamp(); }, POLL_MS);
})();
