// The kiosk: one screen at a time, every text in the chosen language, every input cleared when
// the customer walks away. Text from the server goes in as text, never as HTML.
(function () {
  "use strict";
  var read = function (id) { return JSON.parse(document.getElementById(id).textContent); };
  var config = read("kiosk-config"), strings = read("kiosk-strings");
  var el = function (id) { return document.getElementById(id); };
  var state, idleTimer = null, countdownTimer = null, remaining = 0;
  // Where the kiosk rests: the closure on a closed day, else the language choice (none to make
  // when the branch offers one language).
  var home = config.closed ? "closed" : config.languages.length > 1 ? "language" : "start";
  var api = window.seedKiosk = { resets: 0, step: home };

  function t(key, values) {
    var text = strings[state.language][key] || "";
    return text.replace(/%\((\w+)\)s/g, function (_, name) { return values ? values[name] : ""; });
  }

  function fresh() {
    return { language: state ? state.language : config.default_language, service: null, phone: "", phoneDisplay: "",
             e164: "", consent: false };
  }

  function serviceName(service) { return service.names[state.language] || service.name; }

  function labels() {
    document.documentElement.lang = state.language;
    document.querySelectorAll("[data-label]").forEach(function (node) { node.textContent = t(node.dataset.label); });
    document.querySelectorAll("[data-aria-label]").forEach(function (node) {
      node.setAttribute("aria-label", t(node.dataset.ariaLabel));
    });
    document.querySelectorAll("[data-language]").forEach(function (button) {
      button.setAttribute("aria-pressed", String(button.dataset.language === state.language));
    });
    serviceButtons.forEach(labelService);
    if (api.step === "confirm" && state.service) el("confirm-service").textContent = state.service.code + " · " + serviceName(state.service);
    if (api.step === "ticket" && api.ticket) showTicket(api.ticket);
    fitShown();
  }

  function show(step) {
    api.step = step;
    document.querySelectorAll(".step").forEach(function (section) { section.hidden = section.dataset.step !== step; });
    fitShown();
    var focus = document.querySelector("#step-" + step + " input, #step-" + step + " button");
    if (focus) focus.focus();
    armIdle();
  }

  // Headings and service names: smaller rather than beyond two lines (fit.js), at every size.
  var FITTED = "h1, .service-name, #confirm-service, #ticket-service";
  function fitShown() { window.seedFit.all("#step-" + api.step + " :is(" + FITTED + ")"); }
  window.addEventListener("resize", fitShown);
  if (document.fonts) document.fonts.addEventListener("loadingdone", fitShown);

  // --- idle: warn, count down (extendable), then start over with nothing left behind ------------
  // The ticket screen waits ticket_seconds before it asks, the others idle_seconds.
  // Nobody is asked "still there?" while the kiosk waits for the server (a slow answer must not
  // start over on a customer whose ticket is being issued): the clock starts again when it answers.
  var focusBeforeWarning = null, waitingForServer = 0, SERVER_WAIT_SECONDS = 30;
  function armIdle() {
    clearTimeout(idleTimer);
    if (waitingForServer) return;
    if (api.step === home || api.step === "language" || api.step === "start") return;
    var seconds = api.step === "ticket" ? config.ticket_seconds : config.idle_seconds;
    idleTimer = setTimeout(warn, seconds * 1000);
  }
  function warn() {
    remaining = config.warning_seconds;
    focusBeforeWarning = document.activeElement;
    el("idle").hidden = false;
    el("idle-more").focus();
    tickCountdown();
    countdownTimer = setInterval(tickCountdown, 1000);
  }
  function tickCountdown() {
    el("idle-count").textContent = t("idle_body", { seconds: remaining });
    if (remaining <= 0) { reset(); return; }
    remaining -= 1;
  }
  function stopWarning() {
    clearInterval(countdownTimer);
    if (el("idle").hidden) return;
    el("idle").hidden = true;
    if (focusBeforeWarning && document.contains(focusBeforeWarning)) focusBeforeWarning.focus();
    focusBeforeWarning = null;
  }
  // While the warning is up, Tab and Shift+Tab stay among its controls (it is a modal dialog).
  el("idle").addEventListener("keydown", function (event) {
    if (event.key !== "Tab") return;
    var controls = el("idle").querySelectorAll("button, [href], input, [tabindex]:not([tabindex='-1'])");
    var first = controls[0], last = controls[controls.length - 1];
    if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
  });
  document.addEventListener("focusin", function (event) {
    if (!el("idle").hidden && !el("idle").contains(event.target)) el("idle-more").focus();
  });
  function reset() {
    stopWarning();
    focusBeforeWarning = null;
    state = fresh();
    state.language = config.default_language;
    el("phone").value = "";
    showTyped();  // and forget the last number shown
    el("appointment-key").value = "";
    ["phone-error", "confirm-error", "phone-display", "ticket-print-error", "appointment-error"].forEach(function (id) { el(id).textContent = ""; });
    api.ticket = null;
    api.resets += 1;
    labels();
    show(home);
  }
  el("idle-more").addEventListener("click", function () { stopWarning(); armIdle(); });
  ["pointerdown", "keydown", "input"].forEach(function (type) {
    document.addEventListener(type, function () { if (el("idle").hidden) armIdle(); }, true);
  });

  // --- language ------------------------------------------------------------------------------
  function setLanguage(language) { state.language = language; labels(); }
  document.querySelectorAll("[data-language]").forEach(function (button) {
    button.addEventListener("click", function () { setLanguage(button.dataset.language); });
  });
  document.querySelectorAll("[data-pick-language]").forEach(function (button) {
    button.addEventListener("click", function () { setLanguage(button.dataset.pickLanguage); show("start"); });
  });
  document.querySelectorAll("[data-go]").forEach(function (button) {
    button.addEventListener("click", function () { show(button.dataset.go); });
  });

  // --- service -------------------------------------------------------------------------------
  el("walk-in").addEventListener("click", function () { show("service"); });
  // A paused service stays in its place, greyed and saying so, and cannot be chosen.
  var serviceButtons = config.services.map(function (service) {
    var button = document.createElement("button"), name = document.createElement("span");
    button.type = "button";
    button.className = service.paused ? "big paused" : "big";
    button.dataset.service = service.code;
    name.className = "service-name";
    button.appendChild(name);
    if (service.paused) {
      var note = document.createElement("span");
      note.className = "service-note";
      button.appendChild(note);
      button.disabled = true;
    } else {
      button.addEventListener("click", function () { state.service = service; show("phone"); });
    }
    el("services").appendChild(button);
    return { button: button, service: service };
  });
  function labelService(entry) {
    entry.button.querySelector(".service-name").textContent = entry.service.code + " · " + serviceName(entry.service);
    var note = entry.button.querySelector(".service-note");
    if (note) note.textContent = t("paused");
  }

  // --- phone ---------------------------------------------------------------------------------
  ["1", "2", "3", "4", "5", "6", "7", "8", "9", "+", "0", "⌫"].forEach(function (key) {
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = key;
    button.dataset.key = key;
    if (key === "⌫") button.dataset.ariaLabel = "key_delete";  // an icon: named in words; digits and + by themselves
    button.addEventListener("click", function () {
      var input = el("phone");
      input.value = key === "⌫" ? input.value.slice(0, -1) : (input.value + key).slice(0, 20);
      showTyped();
    });
    el("keypad").appendChild(button);
  });
  var clear = document.createElement("button");
  clear.type = "button";
  clear.className = "keypad-clear";
  clear.dataset.key = "clear";
  clear.dataset.label = "keypad_clear";
  clear.addEventListener("click", function () { el("phone").value = ""; showTyped(); el("phone").focus(); });
  el("keypad").appendChild(clear);

  // The number shown back as it is typed, in the branch's national format ("07700 900123",
  // "090-1234-5678"): the server's libphonenumber formats it (phone-check, typing: true), asked once
  // the keys pause and there is something to format (the asking shares the phone check's rate
  // limit). Until it answers, or when it cannot, the last answer plus the keys since, else the keys.
  var typed = { raw: "", shown: "", timer: null };
  function showTyped() {
    var raw = el("phone").value, node = el("phone-typed");
    clearTimeout(typed.timer);
    el("phone-error").textContent = "";  // what it said was about the number before this key
    if (!raw.trim()) { typed.raw = typed.shown = ""; node.textContent = ""; return; }
    var grown = typed.raw && raw.indexOf(typed.raw) === 0;
    node.textContent = grown ? typed.shown + raw.slice(typed.raw.length) : raw.trim();
    if (raw.replace(/\D/g, "").length < 4) return;
    typed.timer = setTimeout(function () {
      post("/api/v1/phone-check", { phone: raw, branch: config.branch, typing: true }).then(function (result) {
        if (!result.ok || el("phone").value !== raw || typeof result.data.display !== "string") return;
        typed.raw = raw; typed.shown = result.data.display || raw.trim();
        node.textContent = typed.shown;
      }).catch(function () { /* the keys as typed stay shown */ });
    }, 250);
  }
  el("phone").addEventListener("input", showTyped);

  // --- registration: an administrator's setup link (…/kiosk/1#setup=<token>) gives this screen its
  // token; it is kept here and sent with every check-in, so the kiosk has its own rate limit. -----
  var TOKEN_KEY = "seed.kiosk.token";
  function adoptSetupToken() {
    var url = new URL(window.location.href);
    var fromHash = new URLSearchParams(url.hash.slice(1)).get("setup");
    var token = fromHash || url.searchParams.get("setup");
    if (!token) return;
    try { window.localStorage.setItem(TOKEN_KEY, token); } catch (e) { /* storage off: unregistered */ }
    url.searchParams.delete("setup");
    url.hash = "";
    window.history.replaceState(null, "", url.pathname + url.search);  // the secret leaves the address bar
  }
  function kioskToken() {
    try { return window.localStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }
  adoptSetupToken();
  api.registered = Boolean(kioskToken());

  function post(path, body) {
    var headers = { "Content-Type": "application/json" };
    var token = kioskToken();
    if (token) headers["X-Kiosk-Token"] = token;
    waitingForServer += 1;
    armIdle();  // (stops the clock)
    // A server that never answers fails the request (the step says so) rather than hold the clock.
    var signal = window.AbortSignal && AbortSignal.timeout ? AbortSignal.timeout(SERVER_WAIT_SECONDS * 1000) : undefined;
    return fetch(path, { method: "POST", headers: headers, body: JSON.stringify(body), signal: signal })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) { return { ok: response.ok, data: data }; });
      })
      .finally(function () {
        waitingForServer -= 1;
        if (el("idle").hidden) armIdle();
      });
  }

  el("phone-next").addEventListener("click", function () {
    var raw = el("phone").value.trim();
    if (!raw) { el("phone-error").textContent = t("phone_required"); return; }
    post("/api/v1/phone-check", { phone: raw, branch: config.branch, language: state.language }).then(function (result) {
      if (!result.ok) { el("phone-error").textContent = result.data.message || t("error"); return; }
      el("phone-error").textContent = "";
      state.phone = raw; state.e164 = result.data.e164; state.phoneDisplay = result.data.display;
      el("phone-display").textContent = result.data.display;
      show("consent");
    }).catch(function () { el("phone-error").textContent = t("error"); });
  });
  el("phone-skip").addEventListener("click", function () {
    state.phone = state.e164 = state.phoneDisplay = ""; state.consent = false; el("phone").value = ""; showTyped(); confirm();
  });
  el("consent-yes").addEventListener("click", function () { state.consent = true; confirm(); });
  el("consent-no").addEventListener("click", function () { state.consent = false; confirm(); });

  // --- "I have an appointment": a booking code (letters) or the phone it was booked with ------
  el("have-appointment").addEventListener("click", function () { el("appointment-key").value = ""; show("appointment"); });
  el("appointment-next").addEventListener("click", function () {
    var key = el("appointment-key").value.trim();
    if (!key) return;
    var body = { branch: config.branch, language: state.language };
    if (/[A-Za-z]/.test(key)) body.booking_code = key; else body.phone = key;
    post("/api/v1/checkins", body).then(function (result) {
      if (!result.ok) { el("appointment-error").textContent = result.data.message || t("error"); return; }
      el("appointment-error").textContent = "";
      issued(result.data);
    }).catch(function () { el("appointment-error").textContent = t("error"); });
  });

  // --- confirm and ticket ----------------------------------------------------------------------
  function confirm() {
    el("confirm-service").textContent = state.service.code + " · " + serviceName(state.service);
    el("confirm-texts").textContent = state.consent ? t("texts_to", { number: state.phoneDisplay }) : t("texts_none");
    el("confirm-error").textContent = "";
    show("confirm");
  }

  el("get-ticket").addEventListener("click", function () {
    var button = el("get-ticket");
    button.disabled = true;  // one touch, one ticket
    var body = { service: state.service.code, language: state.language, sms_consent: state.consent, branch: config.branch };
    if (state.consent) body.phone = state.e164;
    post("/api/v1/checkins", body).then(function (result) {
      button.disabled = false;
      if (!result.ok) { el("confirm-error").textContent = result.data.message || t("error"); return; }
      issued(result.data);
    }).catch(function () { button.disabled = false; el("confirm-error").textContent = t("error"); });
  });

  function issued(data) {
    api.ticket = data.ticket;
    api.print = data.print;
    showTicket(api.ticket);
    el("ticket-print-error").textContent = (data.print && data.print.message) || "";
    show("ticket");  // arms the "still there?" warning after ticket_seconds
  }

  function showTicket(ticket) {
    el("ticket-number").textContent = ticket.number;
    var known = config.services.filter(function (s) { return s.code === ticket.service; })[0];
    el("ticket-service").textContent = ticket.service + " · " + (known ? serviceName(known) : ticket.service_name);
    var ahead = Math.max(0, (ticket.position || 1) - 1);  // nobody ahead: "you're next", never "0 … about 0 min"
    el("ticket-ahead").textContent = ahead ? t("ahead", { count: ahead }) : t("you_are_next");
    el("ticket-wait").textContent = ahead ? t("wait", { minutes: ticket.estimated_wait_minutes }) : t("stay_close");
    el("ticket-texts").hidden = !ticket.sms;
    var path = new URL(ticket.status_url).pathname;
    el("ticket-qr").src = path + "/qr.svg";
    el("ticket-qr").alt = t("qr_alt");
  }
  el("ticket-done").addEventListener("click", reset);

  state = fresh();
  reset();
  api.resets = 0;
})();
