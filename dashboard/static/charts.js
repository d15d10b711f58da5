// Trend charts drawn as inline SVG from a chart element's data-series JSON:
// {title, step (s), end (start of the last bucket), count, lines: [{label, cls, points: {t: n}}]}.
// Buckets missing from `points` are zero, as in the Redis contract.
"use strict";
(function () {
  var NS = "http://www.w3.org/2000/svg";
  var VN_OFFSET = 7 * 3600;
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function label(t, step) {
    var d = new Date((t + VN_OFFSET) * 1000); // Vietnam time, read with the UTC getters
    var day = two(d.getUTCDate()) + "/" + two(d.getUTCMonth() + 1);
    return step < 86400 ? day + " " + two(d.getUTCHours()) + "h" : day;
  }
  function fmt(n) { return new Intl.NumberFormat("vi-VN").format(n); }
  function draw(box) {
    var spec = JSON.parse(box.getAttribute("data-series"));
    var W = Math.max(300, Math.round(box.clientWidth - 16)), H = 220, L = 44, R = 10, T = 26, B = 34;
    var xs = [];
    for (var i = spec.count - 1; i >= 0; i--) xs.push(spec.end - i * spec.step);
    var max = 1;
    spec.lines.forEach(function (line) {
      xs.forEach(function (t) { max = Math.max(max, line.points[t] || 0); });
    });
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": spec.title });
    svg.appendChild(el("text", { x: 4, y: 15, "class": "ttl" }, spec.title));
    var x = function (k) { return L + (W - L - R) * (xs.length < 2 ? 0 : k / (xs.length - 1)); };
    var y = function (v) { return T + (H - T - B) * (1 - v / max); };
    for (var g = 0; g <= 4; g++) {
      var v = Math.round((max * g) / 4);
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e3e6eb" }));
      svg.appendChild(el("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", "class": "t" }, fmt(v)));
    }
    var ticks = 6;
    for (var j = 0; j <= ticks; j++) {
      var k = Math.round(((xs.length - 1) * j) / ticks);
      var anchor = j === 0 ? "start" : j === ticks ? "end" : "middle";
      svg.appendChild(el("text", { x: x(k), y: H - B + 16, "text-anchor": anchor, "class": "t" },
        label(xs[k], spec.step)));
    }
    var lx = L;
    spec.lines.forEach(function (line) {
      var d = xs.map(function (t, k) {
        return (k ? "L" : "M") + x(k).toFixed(1) + " " + y(line.points[t] || 0).toFixed(1);
      }).join(" ");
      var path = el("path", { d: d, fill: "none", "stroke-width": 1.6, "class": line.cls });
      path.appendChild(el("title", {}, line.label));
      svg.appendChild(path);
      svg.appendChild(el("rect", { x: lx, y: H - 12, width: 10, height: 10, "class": "k" + line.cls.slice(1) }));
      var text = el("text", { x: lx + 14, y: H - 3, "class": "t" }, line.label);
      svg.appendChild(text);
      lx += 14 + line.label.length * 6.2 + 18;
    });
    box.replaceChildren(svg);
  }
  var resized = null;
  window.addEventListener("resize", function () {
    clearTimeout(resized);
    resized = setTimeout(function () { window.drawCharts(document); }, 200);
  });
  window.drawCharts = function (root) {
    (root || document).querySelectorAll(".chart[data-series]").forEach(draw);
  };
})();
