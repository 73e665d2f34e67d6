// The waiting-room display: renders each snapshot the server sends, announces calls one after
// another (chime, then speech in each configured language), rotates the language, and resyncs
// from a fresh snapshot whenever the socket comes back. Names and numbers go in as text, never HTML.
(function () {
  "use strict";
  var read = function (id) { return JSON.parse(document.getElementById(id).textContent); };
  var config = read("display-config"), strings = read("display-strings"), assets = read("display-assets");
  var language = config.languages[0], languageIndex = 0, state = null;
  var queue = [], speaking = false;
  var api = window.seedDisplay = { announced: [], snapshots: 0, connected: false, state: null };
  var el = function (id) { return document.getElementById(id); };

  function t(key) { return (strings[language] || strings[config.languages[0]])[key]; }
  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return values[name]; });
  }
  function shown(service) { return !config.services.length || config.services.indexOf(service) >= 0; }
  function item(text, className) {
    var li = document.createElement("li");
    if (className) li.className = className;
    li.textContent = text;
    return li;
  }

  function labels() {
    document.documentElement.lang = language;
    document.querySelectorAll("[data-label]").forEach(function (node) { node.textContent = t(node.dataset.label); });
  }

  function render(snapshot) {
    state = api.state = snapshot;
    api.snapshots += 1;
    var serving = snapshot.serving.filter(function (s) { return shown(s.service); });
    var recent = snapshot.recent.filter(function (r) { return shown(r.service); });
    var latest = recent[0];
    el("now-number").textContent = latest ? latest.number : "–";
    el("now-counter").textContent = latest && latest.counter ? latest.counter : "";
    el("now-name").textContent = config.names && latest && latest.name ? latest.name : "";
    el("nobody").hidden = !!latest;

    var list = el("serving");
    list.textContent = "";
    serving.forEach(function (s) {
      list.appendChild(item(s.number + " → " + t("counter") + " " + s.counter + (config.names && s.name ? " · " + s.name : "")));
    });

    var calls = el("recent");
    calls.textContent = "";
    recent.slice(1).forEach(function (r) {
      var li = item("", r.status === "called" || r.status === "serving" ? "" : "gone");
      var number = document.createElement("span"), counter = document.createElement("span");
      number.textContent = r.number;
      counter.textContent = t("counter") + " " + (r.counter || "");
      li.appendChild(number); li.appendChild(counter);
      li.dataset.ticket = r.number;
      calls.appendChild(li);
    });

    var services = el("services");
    services.textContent = "";
    snapshot.services.filter(function (s) { return shown(s.code); }).forEach(function (s) {
      var li = item("");
      li.dataset.service = s.code;
      var name = document.createElement("span"), count = document.createElement("span");
      name.textContent = s.code + " · " + ((s.names && s.names[language]) || s.name);
      count.textContent = s.waiting + " " + t("people") + " · " + format(t("minutes"), { minutes: s.estimated_wait_minutes });
      li.appendChild(name); li.appendChild(count);
      services.appendChild(li);
    });
  }

  // --- announcements: strictly one after another -------------------------------------------
  var chime = new Audio(assets.chime);

  function wait(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function playChime() {
    return new Promise(function (resolve) {
      var done = false, finish = function () { if (!done) { done = true; resolve(); } };
      chime.currentTime = 0;
      chime.onended = finish;
      chime.play().catch(finish);
      setTimeout(finish, 2500);  // never wait forever on audio
    });
  }

  function speak(text, lang) {
    return new Promise(function (resolve) {
      if (!("speechSynthesis" in window) || !window.speechSynthesis.getVoices().length) { resolve(false); return; }
      var utterance = new SpeechSynthesisUtterance(text), done = false;
      var finish = function () { if (!done) { done = true; resolve(true); } };
      utterance.lang = { en: "en-GB", ja: "ja-JP", ka: "ka-GE" }[lang] || lang;
      utterance.rate = 0.9;
      utterance.onend = finish;
      utterance.onerror = finish;
      window.speechSynthesis.speak(utterance);
      setTimeout(finish, 8000);
    });
  }

  // How a ticket number is said: digit by digit ("A 0 1 2"), but in Japanese as a number ("A12番").
  function spoken(number, lang) {
    return lang === "ja" ? number.replace(/^([A-Z]+)0*(\d)/, "$1$2") : number.split("").join(" ");
  }

  function next() {
    if (speaking || !queue.length) return;
    speaking = true;
    var call = queue.shift(), record = { number: call.number, counter: call.counter, kind: call.kind, texts: [], start: Date.now() };
    var now = el("now");
    now.classList.remove("flash"); void now.offsetWidth; now.classList.add("flash");
    var steps = playChime();
    config.languages.forEach(function (lang) {
      var text = format(strings[lang].speech, { ticket: spoken(call.number, lang), counter: call.counter });
      record.texts.push(text);
      steps = steps.then(function () { return speak(text, lang); }).then(function () { return wait(300); });
    });
    steps.then(function () {
      record.end = Date.now();
      api.announced.push(record);
      speaking = false;
      next();
    });
  }

  function announce(event) {
    if (!event || !event.announce || !shown(event.service)) return;
    queue.push(event);
    next();
  }

  // --- the socket -----------------------------------------------------------------------------
  var socket = api.socket = io("/display", { auth: { branch: config.branch }, transports: ["websocket", "polling"] });
  socket.on("connect", function () { api.connected = true; el("offline").hidden = true; });
  socket.on("disconnect", function () { api.connected = false; el("offline").hidden = false; });
  socket.on("connect_error", function () { el("offline").hidden = false; });
  socket.on("snapshot", render);
  socket.on("update", function (update) { render(update.snapshot); announce(update.event); });
  // Belt and braces: a display that missed an update still shows the truth within a minute.
  setInterval(function () { if (socket.connected) socket.emit("resync", { branch: config.branch }); }, 60000);

  // --- clock and language rotation -----------------------------------------------------------
  var clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", timeZone: config.timezone });
  function tick() { el("clock").textContent = clockFormat.format(new Date()); }
  setInterval(tick, 1000);
  tick();
  if (config.languages.length > 1) {
    setInterval(function () {
      languageIndex = (languageIndex + 1) % config.languages.length;
      language = config.languages[languageIndex];
      labels();
      if (state) render(state);
    }, config.rotate * 1000);
  }
  labels();
})();
