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
  // Refresh the panel unless the user is in the middle of choosing something in it.
  setInterval(function () {
    var active = document.activeElement;
    var panel = document.getElementById("panel");
    if (!panel || (active && panel.contains(active) && active.tagName !== "BODY" && active.tagName !== "BUTTON")) return;
    fetch(window.location.pathname.replace(/\/$/, "") + "/panel", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null) panel.innerHTML = html; })
      .catch(function () {});
  }, 5000);
})();
