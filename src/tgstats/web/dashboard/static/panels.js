// Plugin panels on a chat page. The server renders one <section data-panel-kind> per
// validated panel; this reads /api/v1/chats/{id}/<data-panel-path> for the page's period and
// draws the answer by kind. Every value from the answer is set as text, never parsed as HTML.
// A panel that fails (network, error status, an answer of the wrong shape) shows the
// reason inside itself; the rest of the page goes on.
(function () {
  "use strict";
  var ns = window.tgstats;
  var gettext = ns.gettext;
  var ngettext = ns.ngettext;
  var MAX_ROWS = 200; // a plugin answering thousands of rows must not freeze the page
  var MAX_BARS = 100;
  var plainNumber = new Intl.NumberFormat("en-US", { maximumFractionDigits: 3 });

  // Server-side validation already refuses these; checked again so a tampered page
  // cannot point a panel outside the chat's API.
  var SAFE_PATH = /^[A-Za-z0-9_.~-]+(\/[A-Za-z0-9_.~-]+)*$/;

  function valueText(value) {
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") {
      if (!isFinite(value)) return String(value);
      return Number.isInteger(value) ? ns.formatInt(value) : plainNumber.format(value);
    }
    if (typeof value === "string") return value;
    if (typeof value === "boolean") return value ? "yes" : "no";
    return JSON.stringify(value);
  }

  function shapeError(what) {
    return new Error("the plugin answered in an unexpected shape (" + what + ")");
  }

  function limitNote(body, shown, total, noun) {
    if (total > shown) {
      body.appendChild(
        ns.el("p", { className: "muted small panel-note", text: gettext("Showing the first {shown} of {total} {what}.", { shown: ns.formatInt(shown), total: ns.formatInt(total), what: noun }) })
      );
    }
  }

  function renderTable(body, answer) {
    if (!Array.isArray(answer.columns)) throw shapeError("columns is not a list");
    if (!Array.isArray(answer.rows) || !answer.rows.every(Array.isArray)) throw shapeError("rows is not a list of lists");
    ns.clear(body);
    if (!answer.rows.length) {
      ns.setStatus(body, gettext("Nothing in this period."));
      return;
    }
    var head = ns.el("tr", {}, answer.columns.map(function (column) {
      return ns.el("th", { text: valueText(column), attrs: { scope: "col" } });
    }));
    var rows = answer.rows.slice(0, MAX_ROWS).map(function (row) {
      return ns.el("tr", {}, row.map(function (cell) {
        return ns.el("td", { className: typeof cell === "number" ? "num" : "", text: valueText(cell) });
      }));
    });
    var table = ns.el("table", { className: "data-table" }, [ns.el("thead", {}, [head]), ns.el("tbody", {}, rows)]);
    body.appendChild(ns.el("div", { className: "table-wrap" }, [table]));
    limitNote(body, rows.length, answer.rows.length, gettext("rows"));
    body.setAttribute("data-status", "ready");
  }

  function renderBars(body, answer) {
    if (!Array.isArray(answer.labels) || !Array.isArray(answer.values)) throw shapeError("labels or values is not a list");
    if (answer.labels.length !== answer.values.length) throw shapeError("labels and values differ in length");
    if (!answer.values.every(function (v) { return typeof v === "number" && isFinite(v); })) throw shapeError("a value is not a number");
    var rows = answer.labels.slice(0, MAX_BARS).map(function (label, index) {
      var value = answer.values[index];
      return { label: valueText(label), value: value, valueText: valueText(value) };
    });
    ns.renderBars(body, rows, { empty: gettext("Nothing in this period.") });
    limitNote(body, rows.length, answer.labels.length, gettext("bars"));
  }

  function renderNumber(body, answer) {
    var value = answer.value;
    if (!(typeof value === "number" || typeof value === "string" || value === null)) throw shapeError("value is not a number");
    if (answer.label !== undefined && answer.label !== null && typeof answer.label !== "string") throw shapeError("label is not text");
    ns.clear(body);
    body.appendChild(ns.el("p", { className: "kpi-value panel-number", text: valueText(value) }));
    if (answer.label) body.appendChild(ns.el("p", { className: "muted small panel-label", text: answer.label }));
    body.setAttribute("data-status", "ready");
  }

  var RENDERERS = { table: renderTable, bars: renderBars, number: renderNumber };

  function loadPanel(section, base, period) {
    var body = section.querySelector(".panel-body");
    var key = "panel:" + section.getAttribute("data-panel-plugin") + "/" + section.getAttribute("data-panel-id");
    var path = section.getAttribute("data-panel-path") || "";
    var render = RENDERERS[section.getAttribute("data-panel-kind")];
    function fail(error) {
      if (error && error.message === "signed out") return;
      ns.setStatus(body, gettext("Could not load this panel: {error}", { error: error && error.message ? error.message : String(error) }), "error");
    }
    if (!render || !SAFE_PATH.test(path) || /(^|\/)\.\.?(\/|$)/.test(path)) {
      fail(new Error("the panel's description is not usable"));
      return;
    }
    ns.api(base + path, period)
      .then(function (answer) {
        if (answer === null || typeof answer !== "object" || Array.isArray(answer)) throw shapeError("not a JSON object");
        ns.data[key] = answer;
        render(body, answer);
      })
      .catch(fail);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var page = document.body;
    var base = "chats/" + encodeURIComponent(page.getAttribute("data-chat-id")) + "/";
    var period = { from: page.getAttribute("data-from"), to: page.getAttribute("data-to") };
    document.querySelectorAll("section[data-panel-kind]").forEach(function (section) {
      loadPanel(section, base, period);
    });
  });
})();
