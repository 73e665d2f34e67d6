// Online booking: the pages work without this script. With it, a form is sent once however often it
// is pressed (a double tap must not book twice or show "just taken" for one's own booking), and after
// a refusal the first field to correct has the focus.
(function () {
  "use strict";
  document.querySelectorAll("form").forEach(function (form) {
    var sent = false;
    form.addEventListener("submit", function (event) {
      if (sent) { event.preventDefault(); return; }
      sent = true;
      form.setAttribute("aria-busy", "true");
    });
  });
  var wrong = document.querySelector("[aria-invalid='true']");
  if (wrong) wrong.focus();
})();
