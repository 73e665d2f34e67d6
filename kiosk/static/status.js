// The customer's status page: this ticket only, refreshed every few seconds without a reload.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("status-data").textContent), words = data.words;
  function fill(text, values) { return text.replace(/%\((\w+)\)s/g, function (_, k) { return values[k]; }); }
  function render(status) {
    var text;
    if (status.status === "waiting") {
      text = fill(words.ahead, { count: status.ahead }) + " · " + fill(words.wait, { minutes: status.estimated_wait_minutes });
    } else if (status.status === "called") {
      text = fill(words.called, { counter: status.counter });
    } else if (status.status === "serving") {
      text = fill(words.serving, { counter: status.counter });
    } else if (status.status === "held") {
      text = words.held;
    } else {
      text = words.finished;
    }
    document.getElementById("state").textContent = text;
    document.getElementById("updated").textContent = fill(words.updated, { time: new Date().toLocaleTimeString() });
    window.seedStatus = status;
  }
  function refresh() {
    fetch(data.url, { cache: "no-store" }).then(function (r) { return r.json(); }).then(render)
      .catch(function () { document.getElementById("updated").textContent = words.offline; });
  }
  render(data.status);
  setInterval(refresh, 4000);
})();
