// Long words set smaller rather than wrapped beyond two lines: a heading, a service name (a city
// office's run to 80 characters, and Georgian letters are wide). Measured in the page, so done
// again at each size, language and font load; down to half the size, never under 14 px. Used by
// the kiosk and the status page (window.seedFit.all(selector)).
window.seedFit = (function () {
  "use strict";
  var MOST_LINES = 2, SMALLEST_PX = 14;

  function lines(node) {
    var range = document.createRange(), bottoms = {};
    range.selectNodeContents(node);
    Array.prototype.forEach.call(range.getClientRects(), function (line) {
      if (line.width > 0) bottoms[Math.round(line.bottom)] = true;
    });
    return Object.keys(bottoms).length;
  }

  function fit(node) {
    node.style.fontSize = "";
    var size = parseFloat(getComputedStyle(node).fontSize), smallest = Math.max(SMALLEST_PX, size / 2);
    while (lines(node) > MOST_LINES && size > smallest) {
      size = Math.max(smallest, size * 0.92);
      node.style.fontSize = size + "px";
    }
  }

  function all(selector) { document.querySelectorAll(selector).forEach(fit); }

  return { lines: lines, fit: fit, all: all };
})();
