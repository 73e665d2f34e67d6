/* Today, live: the figures the server pushes to the report page (reports/live.py) after each change
   of the branch's queue. Nothing is polled; a reconnect gets the figures again. */
(function () {
  "use strict";
  var card = document.getElementById("live");
  if (!card || typeof io === "undefined") return;
  var strings = JSON.parse(document.getElementById("live-strings").textContent);
  var state = document.getElementById("live-state");
  var lang = document.documentElement.lang || undefined;
  var formats = {
    count: new Intl.NumberFormat(lang),
    minutes: new Intl.NumberFormat(lang, { maximumFractionDigits: 1 }),
    share: new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 1 })
  };
  var fields = [["waiting", "waiting", "count"], ["longest", "longest_wait_minutes", "minutes"],
                ["counters", "counters_open", "count"], ["served", "served", "count"],
                ["level", "service_level", "share"]];
  var api = window.seedLive = { updates: 0, last: null, connected: false };

  function show(figures) {
    fields.forEach(function (field) {
      var value = figures[field[1]];
      document.getElementById("live-" + field[0]).textContent =
        value === null || value === undefined ? "–" : formats[field[2]].format(value);
    });
  }

  var socket = api.socket = io("/reports/live", { auth: { branch: Number(card.dataset.branch) },
                                                   transports: ["websocket", "polling"] });
  socket.on("figures", function (figures) {
    api.updates += 1;
    api.last = figures;
    show(figures);
  });
  socket.on("connect", function () { api.connected = true; state.textContent = strings.live; });
  function offline() { api.connected = false; state.textContent = strings.offline; }
  socket.on("disconnect", offline);
  socket.on("connect_error", offline);
})();
