// The customer's status page: this ticket only, pushed over Socket.IO (/status) as it changes.
// Without a socket (it dropped, or the client script is missing) the page asks every 30 s instead.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("status-data").textContent), words = data.words;
  var POLL_MS = 30000, poller = null;
  function fill(text, values) { return text.replace(/%\((\w+)\)s/g, function (_, k) { return values[k]; }); }
  function stamp() {
    document.getElementById("updated").textContent = fill(words.updated, { time: new Date().toLocaleTimeString() });
  }
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
    stamp();
    window.seedStatus = status;
  }
  function refresh() {
    fetch(data.url, { cache: "no-store" }).then(function (r) { return r.json(); }).then(render)
      .catch(function () { document.getElementById("updated").textContent = words.offline; });
  }
  function poll(on) {
    if (on && poller === null) {
      poller = setInterval(refresh, POLL_MS);
    } else if (!on && poller !== null) {
      clearInterval(poller);
      poller = null;
    }
  }
  render(data.status);
  if (typeof window.io !== "function") {
    poll(true);
    return;
  }
  var live = window.seedStatusLive = { connected: false, connects: 0, pushes: 0 };
  var socket = live.socket = window.io("/status", { auth: { token: data.token }, transports: ["websocket", "polling"] });
  socket.on("connect", function () { live.connected = true; live.connects += 1; poll(false); });  // the server sends the status at once
  socket.on("disconnect", function () { live.connected = false; poll(true); });
  socket.on("connect_error", function () { live.connected = false; poll(true); });
  socket.on("status", function (status) { live.pushes += 1; render(status); });
  // Connected, the page would have heard of any change: say it is current without asking the server.
  setInterval(function () { if (live.connected) stamp(); }, POLL_MS);
})();
