// Time charts over local days with the vendored uPlot. Colours come from CSS custom
// properties, so a theme switch rebuilds the charts in the new palette.
(function () {
  "use strict";
  var ns = (window.tgstats = window.tgstats || {});
  var DAY = 86400;

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  // "2026-10-05" -> seconds at UTC midnight; the axis is drawn in UTC so a local day
  // of the chat never shifts by the browser's own offset.
  ns.dayToX = function (iso) {
    var parts = iso.split("-");
    return Date.UTC(+parts[0], +parts[1] - 1, +parts[2]) / 1000;
  };

  function options(spec, width) {
    var axis = {
      stroke: cssVar("--muted"),
      grid: { stroke: cssVar("--grid"), width: 1 },
      ticks: { stroke: cssVar("--grid"), width: 1 },
      font: "12px system-ui, sans-serif",
    };
    var series = [{ label: ns.gettext("Day"), value: "{YYYY}-{MM}-{DD}" }];
    spec.series.forEach(function (s) {
      var color = cssVar(s.color);
      var entry = {
        label: s.label,
        stroke: color,
        width: s.kind === "bars" ? 0 : 2,
        points: { show: false },
        value: function (u, v) {
          return v === null || v === undefined ? "–" : s.decimals ? ns.formatDecimal(v) : ns.formatInt(v);
        },
      };
      if (s.kind === "bars") {
        entry.fill = color;
        entry.paths = uPlot.paths.bars({ size: [0.7, 60], align: 0 });
      }
      series.push(entry);
    });
    return {
      width: width,
      height: spec.height || 240,
      tzDate: function (ts) {
        return uPlot.tzDate(new Date(ts * 1000), "UTC");
      },
      scales: {
        x: {
          time: true,
          range: function (u, min, max) {
            // Half a bucket (a day, or a week for weekly data) on each side: whole edge bars.
            var xs = u.data[0];
            var half = xs.length > 1 ? (xs[1] - xs[0]) / 2 : DAY / 2;
            return [min - half, max + half];
          },
        },
        y: {
          range: function (u, min, max) {
            var top = max > 0 ? max * 1.1 : 1;
            return [Math.min(0, min * 1.1), top];
          },
        },
      },
      axes: [axis, Object.assign({ size: 48 }, axis)],
      series: series,
      cursor: { drag: { x: false, y: false }, points: { show: false } },
      legend: { live: true },
    };
  }

  // Categories (hours 0-23, ...) on x instead of days: one bar per label.
  function categoryOptions(spec, width) {
    var opts = options(spec, width);
    var labels = spec.labels;
    delete opts.tzDate;
    opts.scales.x = {
      time: false,
      range: function () {
        return [-0.5, labels.length - 0.5];
      },
    };
    opts.series[0] = { label: spec.xLabel || "", value: function (u, i) { return i === null ? "–" : labels[i]; } };
    opts.axes[0] = Object.assign({}, opts.axes[0], {
      splits: function () {
        return labels.map(function (_, i) { return i; });
      },
      values: function (u, splits) {
        var every = spec.labelEvery || 1;
        return splits.map(function (i) { return i % every === 0 ? labels[i] : ""; });
      },
    });
    return opts;
  }

  function build(name) {
    var entry = ns.charts[name];
    ns.clear(entry.container);
    var width = Math.max(entry.container.clientWidth, 240);
    var opts = entry.spec.labels ? categoryOptions(entry.spec, width) : options(entry.spec, width);
    entry.plot = new uPlot(opts, entry.data, entry.container);
    entry.container.setAttribute("role", "img");
    if (entry.spec.label) entry.container.setAttribute("aria-label", entry.spec.label);
    entry.container.setAttribute("data-status", "ready");
    // export.js adds the download buttons (once) when a chart is first drawn.
    document.dispatchEvent(new CustomEvent("tgstats:chart", { detail: { name: name } }));
  }

  // spec: {days: [iso...], series: [{label, values, kind: "bars"|"line", color: "--chart-1"}]}
  ns.timeChart = function (name, container, spec) {
    var data = [spec.days.map(ns.dayToX)];
    spec.series.forEach(function (s) {
      data.push(s.values);
    });
    var previous = ns.charts[name];
    if (previous && previous.plot) previous.plot.destroy();
    ns.charts[name] = { container: container, spec: spec, data: data, plot: null };
    build(name);
    return ns.charts[name].plot;
  };

  // spec: {labels: ["0", "1", ...], series: [{label, values, kind: "bars", color}]}
  ns.categoryChart = function (name, container, spec) {
    var data = [spec.labels.map(function (_, i) { return i; })];
    spec.series.forEach(function (s) {
      data.push(s.values);
    });
    var previous = ns.charts[name];
    if (previous && previous.plot) previous.plot.destroy();
    ns.charts[name] = { container: container, spec: spec, data: data, plot: null };
    build(name);
    return ns.charts[name].plot;
  };

  document.addEventListener("tgstats:theme", function () {
    Object.keys(ns.charts).forEach(function (name) {
      var entry = ns.charts[name];
      if (entry.plot) {
        entry.plot.destroy();
        build(name);
      }
    });
  });

  if (window.ResizeObserver) {
    var pending = null;
    var observer = new ResizeObserver(function () {
      if (pending) return;
      pending = window.requestAnimationFrame(function () {
        pending = null;
        Object.keys(ns.charts).forEach(function (name) {
          var entry = ns.charts[name];
          if (!entry.plot) return;
          var width = Math.max(entry.container.clientWidth, 240);
          if (Math.abs(width - entry.plot.width) > 2) {
            entry.plot.setSize({ width: width, height: entry.spec.height || 240 });
          }
        });
      });
    });
    document.addEventListener("DOMContentLoaded", function () {
      observer.observe(document.querySelector("main") || document.body);
    });
  }
})();
