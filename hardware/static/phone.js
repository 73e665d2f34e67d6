// The virtual phone: polls the modem's handsets and sends replies. Text is inserted as text, never HTML.
(function () {
  "use strict";
  var current = null;
  var el = function (id) { return document.getElementById(id); };

  // A text's own language, for its bubble's lang (Japanese or Georgian glyphs and voice in an
  // English page): the script most of its letters are in, Latin alone English, else none.
  // The same ranges and rule as core/language.py text_lang.
  var SCRIPTS = {
    ja: /[\u3000-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]/g,
    ka: /[\u10a0-\u10ff\u1c90-\u1cbf\u2d00-\u2d2f]/g
  };
  function textLang(text) {
    var best = null, most = 0;
    Object.keys(SCRIPTS).forEach(function (code) {
      var found = (text || "").match(SCRIPTS[code]), count = found ? found.length : 0;
      if (count > most) { best = code; most = count; }
    });
    return best || (/[A-Za-z]/.test(text || "") ? "en" : null);
  }

  function bubble(item) {
    var li = document.createElement("li"), body = document.createElement("span"), lang = textLang(item.body);
    li.className = "bubble " + item.kind;
    body.className = "body";
    body.textContent = item.body;
    if (lang) body.lang = lang;
    li.appendChild(body);
    var meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = (item.kind === "in" ? "received " : "sent ") + new Date(item.time).toLocaleString() +
      (item.parts > 1 ? " · " + item.parts + " parts" : "") + (item.encoding ? " · " + item.encoding : "");
    li.appendChild(meta);
    return li;
  }

  function refresh() {
    fetch("/api/v1/virtual-phone/numbers").then(function (r) { return r.json(); }).then(function (data) {
      var list = el("numbers");
      list.textContent = "";
      if (!data.numbers.length) { var li = document.createElement("li"); li.className = "empty"; li.textContent = "No texts yet."; list.appendChild(li); }
      data.numbers.forEach(function (n) {
        var li = document.createElement("li"), a = document.createElement("a");
        a.href = "#" + n; a.textContent = n; a.dataset.number = n;
        a.addEventListener("click", function (e) { e.preventDefault(); open(n); });
        li.appendChild(a); list.appendChild(li);
      });
    });
    if (!current) return;
    fetch("/api/v1/virtual-phone/messages?number=" + encodeURIComponent(current)).then(function (r) { return r.json(); }).then(function (data) {
      if (!data.messages) return;
      var items = data.messages.map(function (m) { return { kind: "in", body: m.body, time: m.time, parts: m.parts, encoding: m.encoding }; })
        .concat(data.sent.map(function (m) { return { kind: "out", body: m.body, time: m.time }; }));
      items.sort(function (a, b) { return a.time < b.time ? -1 : a.time > b.time ? 1 : 0; });
      var thread = el("thread");
      thread.textContent = "";
      items.forEach(function (item) { thread.appendChild(bubble(item)); });
    });
  }

  function open(number) {
    current = number;
    el("title").textContent = number;
    el("reply").hidden = false;
    el("number").value = number;
    refresh();
  }

  el("pick").addEventListener("submit", function (e) {
    e.preventDefault();
    var number = el("number").value.trim();
    fetch("/api/v1/virtual-phone/messages?number=" + encodeURIComponent(number)).then(function (r) {
      return r.json().then(function (data) {
        el("pick-error").textContent = r.ok ? "" : data.message;
        if (r.ok) open(data.number);
      });
    });
  });

  el("reply").addEventListener("submit", function (e) {
    e.preventDefault();
    fetch("/api/v1/virtual-phone/send", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ from: current, text: el("text").value })
    }).then(function (r) { return r.json().then(function (data) {
      if (r.ok) { el("text").value = ""; el("error").textContent = ""; refresh(); } else { el("error").textContent = data.message; }
    }); });
  });

  if (location.hash.length > 1) open(decodeURIComponent(location.hash.slice(1)));
  refresh();
  setInterval(refresh, 2000);
})();
