// The display link builder: every change of the options rewrites the link, its QR code and the
// preview at once. The link's parameters and their order are the ones admin/screens.py writes
// (display_link) and display/routes.py reads: services=A,B&languages=en,ja&layout=&rotate=[&names=1].
(function () {
  "use strict";
  var form = document.getElementById("display-builder");
  if (!form) return;
  var el = function (id) { return document.getElementById(id); };
  var data = form.dataset, previewTimer = null;
  var api = window.seedScreens = { url: el("display-url").value };

  function ticked(name) {
    return Array.prototype.map.call(form.querySelectorAll("input[name='" + name + "']:checked"),
      function (input) { return input.value; });
  }

  function rotation() {
    var field = form.elements.rotate, raw = field.value.trim(), low = Number(data.rotateLow), high = Number(data.rotateHigh);
    var ok = /^[0-9]{1,4}$/.test(raw) && Number(raw) >= low && Number(raw) <= high;
    field.setAttribute("aria-invalid", ok ? "false" : "true");
    return ok ? String(Number(raw)) : null;
  }

  function query() {
    var rotate = rotation();
    if (rotate === null) return null;
    var parts = [], services = ticked("services"), languages = ticked("languages");
    if (services.length) parts.push("services=" + services.join(","));
    parts.push("languages=" + (languages.length ? languages : [data.defaultLanguage]).join(","));
    parts.push("layout=" + ticked("layout")[0]);
    parts.push("rotate=" + rotate);
    if (ticked("names").length) parts.push("names=1");
    return parts.join("&");
  }

  function update() {
    var built = query();
    if (built === null) return;  // the field says what is wrong; the last good link stays
    var url = data.displayBase + "?" + built;
    api.url = el("display-url").value = url;
    el("open-display").href = url;
    el("display-qr").src = data.qrBase + "&" + built;
    el("display-qr").hidden = false;
    history.replaceState(null, "", data.pageBase + "&" + built);
    clearTimeout(previewTimer);
    previewTimer = setTimeout(function () { el("display-preview").src = url; }, 400);
  }

  form.addEventListener("change", update);
  form.addEventListener("input", function (event) { if (event.target.name === "rotate") update(); });
  form.addEventListener("click", function (event) {
    var language = event.target.dataset && event.target.dataset.up;
    if (!language) return;
    var item = form.querySelector("li[data-language='" + language + "']");
    if (item.previousElementSibling) item.parentNode.insertBefore(item, item.previousElementSibling);
    event.target.focus();
    update();
  });
  form.addEventListener("submit", function (event) { event.preventDefault(); update(); });
  el("display-url").addEventListener("focus", function () { this.select(); });
})();
