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
  // Every phrase is a whole catalogue string with %(name)s placeholders: the language puts the
  // number where it belongs ("Counter 3", "3番窓口"); nothing here glues words to numbers.
  function format(template, values) {
    return template.replace(/%\((\w+)\)s/g, function (_, name) { return values[name] == null ? "" : values[name]; });
  }
  // The same, as nodes: a placeholder may be an element (the number in bold, with its own id).
  function phrase(template, values) {
    var fragment = document.createDocumentFragment(), last = 0;
    template.replace(/%\((\w+)\)s/g, function (match, name, offset) {
      var value = values[name];
      fragment.appendChild(document.createTextNode(template.slice(last, offset)));
      fragment.appendChild(value instanceof Node ? value : document.createTextNode(value == null ? "" : value));
      last = offset + match.length;
      return match;
    });
    fragment.appendChild(document.createTextNode(template.slice(last)));
    return fragment;
  }
  function node(tag, text, className, id) {
    var made = document.createElement(tag);
    if (className) made.className = className;
    if (id) made.id = id;
    if (text != null) made.textContent = text;
    return made;
  }
  function shown(service) { return !config.services.length || config.services.indexOf(service) >= 0; }
  function item(text, className) { return node("li", text, className); }
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  function labels() {
    document.documentElement.lang = language;
    document.querySelectorAll("[data-label]").forEach(function (node) { node.textContent = t(node.dataset.label); });
  }

  // A label too long for its box (a long Georgian service name, a five-character ticket) is set
  // smaller, down to `floor` of its size, rather than overflow or lose lines to the clamp.
  function fit(label, floor) {
    label.style.fontSize = "";
    if (!label.offsetParent) return;  // not laid out (a panel this layout hides)
    var size = parseFloat(getComputedStyle(label).fontSize), smallest = size * (floor || 0.7);
    while ((label.scrollHeight > label.clientHeight + 1 || label.scrollWidth > label.clientWidth + 1) && size > smallest) {
      size = Math.max(smallest, size * 0.92);
      label.style.fontSize = size + "px";
    }
  }

  // Recent calls: as many as the panel holds, newest first; the rest are left off, never cut in
  // half. Shown one by one, so it holds whatever the layout centres or wraps.
  function trim(list) {
    var panel = list.closest("section"), style = getComputedStyle(panel), box = panel.getBoundingClientRect();
    var top = box.top + parseFloat(style.paddingTop) - 1, bottom = box.bottom - parseFloat(style.paddingBottom) + 1;
    var right = box.right - parseFloat(style.paddingRight) + 1, items = list.children;
    each(items, function (li) { li.hidden = true; });
    for (var i = 0; i < items.length; i++) {
      items[i].hidden = false;
      var first = items[0].getBoundingClientRect(), edge = items[i].getBoundingClientRect();
      if (first.top < top || edge.bottom > bottom || edge.right > right) { items[i].hidden = true; break; }
    }
  }

  function receive(snapshot) {
    state = api.state = snapshot;
    api.snapshots += 1;
    render();
  }

  // Drawn again on every snapshot, language turn, resize and font load (sizes are measured).
  function render() {
    if (!state) return;
    var snapshot = state, serving = snapshot.serving.filter(function (s) { return shown(s.service); });
    var recent = snapshot.recent.filter(function (r) { return shown(r.service); });
    var latest = recent[0];
    // No call yet today: the branch, the time and what to do, never an empty panel.
    el("now").hidden = !latest;
    el("idle").hidden = !!latest;
    el("now-number").textContent = latest ? latest.number : "–";
    var where = el("now-where");
    where.textContent = "";
    if (latest && latest.counter) where.appendChild(phrase(t("counter"), { counter: node("strong", latest.counter, null, "now-counter") }));
    el("now-name").textContent = config.names && latest && latest.name ? format(t("name"), { name: latest.name }) : "";
    if (latest) fit(el("now-number"), 0.5);

    var list = el("serving");
    list.textContent = "";
    serving.forEach(function (s) {
      var li = item("");
      var call = node("span");
      call.appendChild(s.counter ? phrase(t("serving"), { ticket: node("strong", s.number), counter: s.counter }) : node("strong", s.number));
      li.appendChild(call);
      if (config.names && s.name) li.appendChild(node("span", format(t("name"), { name: s.name }), "name"));
      list.appendChild(li);
    });

    var calls = el("recent");
    calls.textContent = "";
    recent.slice(1).forEach(function (r) {
      var li = item("", r.status === "called" || r.status === "serving" ? "" : "gone");
      li.appendChild(node("span", r.number, "number"));
      li.appendChild(node("span", r.counter ? format(t("counter"), { counter: r.counter }) : "", "where"));
      li.dataset.ticket = r.number;
      calls.appendChild(li);
    });

    var services = el("services");
    services.textContent = "";
    snapshot.services.filter(function (s) { return shown(s.code); }).forEach(function (s) {
      var li = item("");
      li.dataset.service = s.code;
      var name = node("span", null, "service-name");
      name.appendChild(node("span", s.code, "code"));
      name.appendChild(document.createTextNode((s.names && s.names[language]) || s.name));
      li.appendChild(name);
      li.appendChild(node("span", s.waiting ? format(t("queue"), { count: s.waiting, minutes: s.estimated_wait_minutes })
                                            : t("queue_empty"), "service-wait"));
      services.appendChild(li);
    });
    each(services.querySelectorAll(".service-name"), function (name) { fit(name); });
    // Last: the recent calls' panel has its size only once the waiting lines beside (or under) it are in.
    trim(calls);
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
    return lang === "ja" ? number.replace(/^([A-Z]*)0*(\d)/, "$1$2") : number.split("").join(" ");
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
  socket.on("snapshot", receive);
  // One change, or several that reached this screen together (oldest first): each call is announced.
  socket.on("update", function (update) {
    receive(update.snapshot);
    (update.events || [update.event]).forEach(announce);
  });
  // Belt and braces: a display that missed an update still shows the truth within a minute.
  setInterval(function () { if (socket.connected) socket.emit("resync", { branch: config.branch }); }, 60000);

  // --- clock and language rotation -----------------------------------------------------------
  // The numbers come from the screen's clock read in the branch's time zone (a digits-only
  // formatter, so the screen's own locale never shows); the order and the words come from the
  // server (display/wallclock.py, Babel): "14:05", "Sunday 29 November", "11月29日(日)".
  var branchClock = (function () {
    var fields = { year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", hourCycle: "h23" };
    try { return new Intl.DateTimeFormat("en-US", Object.assign({ timeZone: config.timezone }, fields)); }
    catch (e) { return new Intl.DateTimeFormat("en-US", fields); }  // an unknown zone: the screen's own
  })();
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function written(date) {
    var parts = {};
    branchClock.formatToParts(date).forEach(function (part) { parts[part.type] = Number(part.value); });
    var hour = parts.hour % 24, weekday = (new Date(Date.UTC(parts.year, parts.month - 1, parts.day)).getUTCDay() + 6) % 7;
    var clock = t("clock"), values = {
      H: hour, HH: pad(hour), m: parts.minute, mm: pad(parts.minute), d: parts.day, dd: pad(parts.day),
      M: parts.month, MM: pad(parts.month), y: parts.year, weekday: clock.weekdays[weekday], month: clock.months[parts.month - 1]
    };
    return { time: format(clock.time, values), date: format(clock.date, values), datetime: pad(hour) + ":" + pad(parts.minute) };
  }
  function setText(id, text) { var target = el(id); if (target.textContent !== text) target.textContent = text; }
  function tick() {
    var now = written(new Date());
    setText("clock", now.time); setText("idle-clock", now.time);
    setText("date", now.date); setText("idle-date", now.date);
    el("clock").setAttribute("datetime", now.datetime);
    api.clock = now;
  }
  setInterval(tick, 1000);
  tick();
  window.addEventListener("resize", render);
  if (document.fonts) document.fonts.addEventListener("loadingdone", render);
  if (config.languages.length > 1) {
    setInterval(function () {
      languageIndex = (languageIndex + 1) % config.languages.length;
      language = config.languages[languageIndex];
      labels();
      tick();
      render();
    }, config.rotate * 1000);
  }
  labels();
})();
