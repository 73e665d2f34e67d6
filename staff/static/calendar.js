// The appointments calendar: a question in a <dialog> before an appointment is cancelled. Without
// JS (or without <dialog>) the server asks on the appointment's page instead (confirm=1 answers).
(function () {
  "use strict";
  var dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
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
    if (dialog.returnValue !== "yes" || !form) return;
    var yes = document.createElement("input");
    yes.type = "hidden"; yes.name = "confirm"; yes.value = "1";
    form.appendChild(yes);
    form.submit();
  });
}());
