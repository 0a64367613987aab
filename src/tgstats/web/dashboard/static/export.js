// Charts leave the dashboard: each chart gets PNG and SVG buttons, and the page a print
// button (the print stylesheet in dashboard.css makes it a report). A chart is described
// once as shapes (rects, lines, text) from the very numbers it was drawn from (the API's),
// then written as SVG or painted on a canvas for PNG, so both files show the same thing.
// Text goes in through textContent / fillText, never as markup.
(function () {
  "use strict";
  var ns = window.tgstats;
  var gettext = ns.gettext;
  var SVG_NS = "http://www.w3.org/2000/svg";
  var WIDTH = 960;
  var HEIGHT = 480;
  var MARGIN = { left: 64, right: 24, top: 56, bottom: 72 };

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function subtitle() {
    var body = document.body;
    var title = body.getAttribute("data-chat-title") || (document.getElementById("chat-title") || {}).textContent || "";
    return [title, body.getAttribute("data-from") + " – " + body.getAttribute("data-to"), body.getAttribute("data-timezone")]
      .filter(Boolean)
      .join(" · ");
  }

  // A time or category chart (ns.charts[name]) as shapes.
  function chartShapes(entry) {
    var spec = entry.spec;
    var xs = entry.data[0];
    var n = xs.length;
    var values = [];
    spec.series.forEach(function (s) {
      s.values.forEach(function (v) { if (v !== null && v !== undefined) values.push(v); });
    });
    var max = Math.max.apply(null, values.concat([0]));
    var min = Math.min.apply(null, values.concat([0]));
    var top = max > 0 ? max * 1.1 : 1;
    var bottom = Math.min(0, min * 1.1);
    var plotW = WIDTH - MARGIN.left - MARGIN.right;
    var plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
    var step = plotW / Math.max(n, 1);
    function x(i) { return MARGIN.left + step * (i + 0.5); }
    function y(v) { return MARGIN.top + plotH * (top - v) / (top - bottom); }
    var text = cssVar("--text", "#1c2430");
    var muted = cssVar("--muted", "#667085");
    var grid = cssVar("--grid", "#dde2ea");
    var shapes = [
      { type: "text", x: 20, y: 26, text: spec.label || "", size: 16, fill: text, weight: "600" },
      { type: "text", x: 20, y: 46, text: subtitle(), size: 12, fill: muted },
      { type: "line", x1: MARGIN.left, y1: y(0), x2: WIDTH - MARGIN.right, y2: y(0), stroke: grid },
      { type: "text", x: MARGIN.left - 8, y: y(top) + 4, text: ns.formatInt(top), size: 11, fill: muted, anchor: "end" },
      { type: "text", x: MARGIN.left - 8, y: y(0) + 4, text: "0", size: 11, fill: muted, anchor: "end" },
    ];
    var labels = spec.labels || spec.days;
    if (labels && labels.length) {
      var every = Math.max(1, Math.ceil(labels.length / 8));
      labels.forEach(function (label, i) {
        var last = i === labels.length - 1 && i - Math.floor(i / every) * every >= every / 2;
        if (i % every === 0 || last) {
          shapes.push({ type: "text", x: x(i), y: HEIGHT - MARGIN.bottom + 16, text: String(label), size: 11, fill: muted, anchor: "middle" });
        }
      });
    }
    spec.series.forEach(function (s, index) {
      var color = cssVar(s.color, "#2f6fde");
      if (s.kind === "bars") {
        s.values.forEach(function (v, i) {
          if (v === null || v === undefined) return;
          var y0 = y(0);
          var y1 = y(v);
          shapes.push({
            type: "rect", x: x(i) - step * 0.35, y: Math.min(y0, y1), w: step * 0.7, h: Math.abs(y0 - y1),
            fill: color, series: index, value: v,
          });
        });
      } else {
        var points = [];
        s.values.forEach(function (v, i) { if (v !== null && v !== undefined) points.push([x(i), y(v)]); });
        shapes.push({ type: "polyline", points: points, stroke: color, width: 2, series: index });
      }
      var lx = MARGIN.left + index * 200;
      var ly = HEIGHT - 22;
      shapes.push({ type: "rect", x: lx, y: ly - 9, w: 12, h: 12, fill: color, legend: true });
      shapes.push({ type: "text", x: lx + 18, y: ly + 1, text: s.label, size: 12, fill: text });
    });
    return shapes;
  }

  // The weekday x hour heatmap (the API's matrix) as shapes.
  function heatmapShapes(heatmap) {
    var matrix = heatmap.matrix;
    var max = Math.max.apply(null, matrix.map(function (row) { return Math.max.apply(null, row); }).concat([0]));
    var cellW = (WIDTH - MARGIN.left - MARGIN.right) / 24;
    var cellH = (HEIGHT - MARGIN.top - MARGIN.bottom) / 7;
    var color = cssVar("--chart-1", "#2f6fde");
    var muted = cssVar("--muted", "#667085");
    var shapes = [
      { type: "text", x: 20, y: 26, text: gettext("When people write"), size: 16, fill: cssVar("--text", "#1c2430"), weight: "600" },
      { type: "text", x: 20, y: 46, text: subtitle(), size: 12, fill: muted },
    ];
    matrix.forEach(function (row, d) {
      shapes.push({ type: "text", x: MARGIN.left - 8, y: MARGIN.top + cellH * (d + 0.6), text: ns.weekdays[d], size: 11, fill: muted, anchor: "end" });
      row.forEach(function (count, h) {
        shapes.push({
          type: "rect", x: MARGIN.left + cellW * h + 1, y: MARGIN.top + cellH * d + 1, w: cellW - 2, h: cellH - 2,
          fill: color, opacity: max ? 0.08 + 0.92 * (count / max) : 0.04, value: count, series: 0,
        });
      });
    });
    for (var h = 0; h < 24; h += 2) {
      shapes.push({ type: "text", x: MARGIN.left + cellW * (h + 0.5), y: HEIGHT - MARGIN.bottom + 16, text: String(h).padStart(2, "0"), size: 11, fill: muted, anchor: "middle" });
    }
    return shapes;
  }

  function toSvg(shapes) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("xmlns", SVG_NS);
    svg.setAttribute("width", String(WIDTH));
    svg.setAttribute("height", String(HEIGHT));
    svg.setAttribute("viewBox", "0 0 " + WIDTH + " " + HEIGHT);
    var background = document.createElementNS(SVG_NS, "rect");
    background.setAttribute("width", "100%");
    background.setAttribute("height", "100%");
    background.setAttribute("fill", cssVar("--surface", "#ffffff"));
    svg.appendChild(background);
    shapes.forEach(function (s) {
      var node;
      if (s.type === "rect") {
        node = document.createElementNS(SVG_NS, "rect");
        ["x", "y"].forEach(function (k) { node.setAttribute(k, s[k].toFixed(2)); });
        node.setAttribute("width", s.w.toFixed(2));
        node.setAttribute("height", s.h.toFixed(2));
        node.setAttribute("fill", s.fill);
        if (s.opacity !== undefined) node.setAttribute("fill-opacity", s.opacity.toFixed(3));
        if (s.value !== undefined) {
          node.setAttribute("class", "value");
          node.setAttribute("data-series", String(s.series));
          node.setAttribute("data-value", String(s.value));
        }
      } else if (s.type === "polyline") {
        node = document.createElementNS(SVG_NS, "polyline");
        node.setAttribute("points", s.points.map(function (p) { return p[0].toFixed(2) + "," + p[1].toFixed(2); }).join(" "));
        node.setAttribute("fill", "none");
        node.setAttribute("stroke", s.stroke);
        node.setAttribute("stroke-width", String(s.width));
        node.setAttribute("data-series", String(s.series));
      } else if (s.type === "line") {
        node = document.createElementNS(SVG_NS, "line");
        ["x1", "y1", "x2", "y2"].forEach(function (k) { node.setAttribute(k, s[k].toFixed(2)); });
        node.setAttribute("stroke", s.stroke);
      } else {
        node = document.createElementNS(SVG_NS, "text");
        node.setAttribute("x", s.x.toFixed(2));
        node.setAttribute("y", s.y.toFixed(2));
        node.setAttribute("font-size", String(s.size));
        node.setAttribute("font-family", "system-ui, sans-serif");
        node.setAttribute("fill", s.fill);
        if (s.anchor) node.setAttribute("text-anchor", s.anchor);
        if (s.weight) node.setAttribute("font-weight", s.weight);
        node.textContent = s.text;
      }
      svg.appendChild(node);
    });
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + new XMLSerializer().serializeToString(svg);
  }

  function toPng(shapes, done) {
    var scale = 2;
    var canvas = document.createElement("canvas");
    canvas.width = WIDTH * scale;
    canvas.height = HEIGHT * scale;
    var ctx = canvas.getContext("2d");
    ctx.scale(scale, scale);
    ctx.fillStyle = cssVar("--surface", "#ffffff");
    ctx.fillRect(0, 0, WIDTH, HEIGHT);
    shapes.forEach(function (s) {
      ctx.globalAlpha = 1;
      if (s.type === "rect") {
        ctx.fillStyle = s.fill;
        if (s.opacity !== undefined) ctx.globalAlpha = s.opacity;
        ctx.fillRect(s.x, s.y, s.w, s.h);
      } else if (s.type === "polyline" || s.type === "line") {
        var points = s.type === "line" ? [[s.x1, s.y1], [s.x2, s.y2]] : s.points;
        if (!points.length) return;
        ctx.strokeStyle = s.stroke;
        ctx.lineWidth = s.width || 1;
        ctx.beginPath();
        ctx.moveTo(points[0][0], points[0][1]);
        points.slice(1).forEach(function (p) { ctx.lineTo(p[0], p[1]); });
        ctx.stroke();
      } else {
        ctx.fillStyle = s.fill;
        ctx.font = (s.weight || "400") + " " + s.size + "px system-ui, sans-serif";
        ctx.textAlign = s.anchor === "end" ? "right" : s.anchor === "middle" ? "center" : "left";
        ctx.fillText(s.text, s.x, s.y);
      }
    });
    canvas.toBlob(done, "image/png");
  }

  function save(blob, filename) {
    var url = URL.createObjectURL(blob);
    var link = document.createElement("a");
    link.href = url;
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
  }

  function fileName(name, extension) {
    var body = document.body;
    var parts = ["tgstats", body.getAttribute("data-chat-id"), body.getAttribute("data-user-id"), name, body.getAttribute("data-from"), body.getAttribute("data-to")];
    return parts.filter(Boolean).join("-") + "." + extension;
  }

  ns.chartShapes = function (name) {
    if (name === "heatmap") return ns.data.heatmap ? heatmapShapes(ns.data.heatmap) : null;
    var entry = ns.charts[name];
    return entry ? chartShapes(entry) : null;
  };
  ns.exportChart = function (name, format) {
    var shapes = ns.chartShapes(name);
    if (!shapes) return;
    if (format === "svg") {
      save(new Blob([toSvg(shapes)], { type: "image/svg+xml" }), fileName(name, "svg"));
    } else {
      toPng(shapes, function (blob) { if (blob) save(blob, fileName(name, "png")); });
    }
  };

  // The buttons sit above the chart, once per chart, whatever redraws it later.
  function addButtons(name, container) {
    if (!container || !container.parentNode) return;
    var id = "export-" + name;
    if (document.getElementById(id)) return;
    var bar = ns.el("div", { className: "chart-export", attrs: { id: id, role: "group", "aria-label": gettext("Download this chart") } }, [
      ns.el("button", { className: "button ghost small", text: "PNG", attrs: { type: "button", "data-format": "png", title: gettext("Download as PNG") } }),
      ns.el("button", { className: "button ghost small", text: "SVG", attrs: { type: "button", "data-format": "svg", title: gettext("Download as SVG") } }),
    ]);
    bar.addEventListener("click", function (event) {
      var format = event.target && event.target.getAttribute("data-format");
      if (format) ns.exportChart(name, format);
    });
    container.parentNode.insertBefore(bar, container);
  }

  document.addEventListener("tgstats:chart", function (event) {
    var name = event.detail && event.detail.name;
    var container = name === "heatmap" ? document.getElementById("heatmap") : ns.charts[name] && ns.charts[name].container;
    if (name === "heatmap" && container) container = container.parentNode; // the scrolling wrapper
    addButtons(name, container);
  });

  document.addEventListener("DOMContentLoaded", function () {
    var print = document.getElementById("print-report");
    if (print) {
      print.hidden = false;
      print.addEventListener("click", function () { window.print(); });
    }
  });
})();
