// Editing texts with a live preview of their cost; correction broadcasts. Text goes in as text.
// The branch is the page's (data-branch); every call names it.
(function () {
  "use strict";
  var el = function (id) { return document.getElementById(id); };
  var editor = el("editor"), branch = Number(editor.dataset.branch);
  var words = JSON.parse(el("texts-words").textContent);
  var all = [], timer = null;
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) { return name in values ? values[name] : whole; });
  }
  function call(method, path, body) {
    var url = "/api/v1" + path + (body ? "" : "?branch=" + branch);
    if (body) body.branch = branch;
    return fetch(url, { method: method, credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) { return r.json().then(function (data) { return { ok: r.ok, data: data }; }); });
  }
  function say(id, ok, text) { var node = el(id); node.hidden = false; node.className = "flash " + (ok ? "ok" : "error"); node.textContent = text; }
  function current() { return all.filter(function (t) { return t.kind === el("kind").value && t.language === el("language").value; })[0]; }
  function show(preview) {
    el("preview").textContent = preview.text;
    el("stats").textContent = [preview.encoding, fill(words.characters, { count: preview.characters }),
      fill(words.units, { count: preview.units }),
      fill(preview.segments === 1 ? words.part : words.parts, { count: preview.segments }) + " " +
        fill(words.per_part, { count: preview.per_segment }), fill(words.allowed, { count: preview.allowed })].join(" · ");
    el("warning").hidden = !preview.warning;
    el("warning").textContent = preview.warning || "";
  }
  function load() {
    var t = current();
    // The wording is in the text's language, not the page's: Japanese or Georgian glyphs and voice.
    el("body").lang = el("preview").lang = t.language;
    el("body").value = t.body; el("custom").textContent = t.custom ? words.custom : words.standard; show(t.preview);
  }
  function choose(select, value) {
    if (value && Array.prototype.some.call(select.options, function (o) { return o.value === value; })) select.value = value;
  }
  call("GET", "/templates").then(function (result) {
    all = result.data.templates;
    el("placeholders").textContent = result.data.placeholders.map(function (p) { return "{" + p + "}"; }).join(" ");
    var kinds = [];
    all.forEach(function (t) { if (kinds.indexOf(t.kind) < 0) kinds.push(t.kind); });
    kinds.forEach(function (k) {
      [el("kind"), el("c-kind")].forEach(function (select) { var o = document.createElement("option"); o.value = o.textContent = k; select.appendChild(o); });
    });
    choose(el("kind"), editor.dataset.kind);
    choose(el("language"), editor.dataset.language);
    load();
  });
  el("kind").addEventListener("change", load);
  el("language").addEventListener("change", load);
  el("body").addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      call("POST", "/templates/preview", { body: el("body").value, kind: el("kind").value, language: el("language").value }).then(function (r) {
        if (r.ok) { el("message").hidden = true; show(r.data); } else say("message", false, r.data.message);
      });
    }, 250);
  });
  el("save").addEventListener("click", function () {
    call("PUT", "/templates/" + el("kind").value + "/" + el("language").value, { body: el("body").value }).then(function (r) {
      if (!r.ok) { say("message", false, r.data.message); return; }
      var t = current(); t.body = r.data.body; t.custom = true; t.preview = r.data.preview; load(); say("message", true, words.saved);
    });
  });
  el("revert").addEventListener("click", function () {
    call("DELETE", "/templates/" + el("kind").value + "/" + el("language").value).then(function (r) {
      var t = current(); t.body = r.data.body; t.custom = false; t.preview = r.data.preview; load(); say("message", true, words.restored);
    });
  });
  el("test").addEventListener("click", function () {
    call("POST", "/templates/test", { body: el("body").value, phone: el("test-phone").value }).then(function (r) {
      say("message", r.ok, r.ok ? fill(words.queued, { to: r.data.to }) : r.data.message);
    });
  });
  function windowBody() {
    var zone = function (v) { return v ? new Date(v).toISOString() : ""; };
    return { kind: el("c-kind").value, from: zone(el("c-from").value), to: zone(el("c-to").value), body: el("c-body").value };
  }
  el("c-preview").addEventListener("click", function () {
    call("POST", "/corrections/preview", windowBody()).then(function (r) {
      if (r.ok) el("c-count").textContent = fill(words.recipients, { count: r.data.recipients }); else say("c-message", false, r.data.message);
    });
  });
  el("c-send").addEventListener("click", function () {
    call("POST", "/corrections", windowBody()).then(function (r) {
      say("c-message", r.ok, r.ok ? fill(words.corrections, { count: r.data.queued }) : r.data.message);
    });
  });
})();
