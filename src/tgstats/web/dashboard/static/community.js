// Member flow and retention cohorts on a chat's page: numbers from /member-flow and /cohorts.
(function () {
  "use strict";
  var ns = window.tgstats;
  var body = document.body;
  var chatId = body.getAttribute("data-chat-id");
  var period = { from: body.getAttribute("data-from"), to: body.getAttribute("data-to") };
  var base = "chats/" + encodeURIComponent(chatId) + "/";
  var SOURCE_NAMES = {
    link: "Invite link",
    added: "Added by a member",
    request: "Join request",
    folder: "Folder link",
    direct: "By themselves",
    unknown: "Not recorded",
  };

  function $(id) {
    return document.getElementById(id);
  }

  function load(section, path, params) {
    return ns.api(base + path, Object.assign({}, period, params || {})).then(function (answer) {
      ns.data[section] = answer;
      return answer;
    });
  }

  function failed(node) {
    return function (error) {
      if (error && error.message === "signed out") return;
      ns.setStatus(node, "Could not load: " + (error && error.message ? error.message : error), "error");
    };
  }

  function renderFlow(flow) {
    ns.renderBars(
      $("join-sources"),
      flow.sources.filter(function (s) { return s.joins > 0; }).map(function (s) {
        return { label: SOURCE_NAMES[s.source] || s.source, value: s.joins };
      }),
      { empty: "Nobody joined in this period." }
    );
    ns.renderBars(
      $("invite-links"),
      flow.invite_links.map(function (link) { return { label: link.label, value: link.joins }; }),
      { empty: "No joins through a known invite link." }
    );
    var inviters = ns.clear($("top-inviters"));
    if (!flow.top_inviters.length) {
      inviters.appendChild(ns.el("li", { className: "muted", text: "Nobody brought anyone in this period." }));
    }
    flow.top_inviters.forEach(function (row) {
      inviters.appendChild(
        ns.el("li", { attrs: { "data-user-id": row.user_id, "data-count": row.joins } }, [
          ns.el("span", { text: row.display_name }),
          ns.el("span", {
            className: "muted small",
            text: " · " + ns.formatInt(row.joins) + " (" + ns.formatInt(row.added) + " added, " +
              ns.formatInt(row.via_link) + " by their links)",
          }),
        ])
      );
    });
    var k = flow.leave_kinds;
    $("leave-kinds").textContent =
      ns.formatInt(k.left) + " left · " + ns.formatInt(k.kicked) + " removed · " +
      ns.formatInt(k.banned) + " banned";
  }

  function renderCohorts(result) {
    var table = $("cohort-table");
    var status = $("cohorts-status");
    var unit = result.granularity === "week" ? "wk" : "mo";
    var head = ns.clear(table.querySelector("thead tr"));
    ["Joined", "Newcomers", "Posted"].forEach(function (label, i) {
      head.appendChild(ns.el("th", { className: i ? "num" : "", text: label, attrs: { scope: "col" } }));
    });
    result.offsets.forEach(function (k) {
      head.appendChild(ns.el("th", { className: "num", text: "+" + k + " " + unit, attrs: { scope: "col" } }));
    });
    var rows = ns.clear(table.querySelector("tbody"));
    var shown = result.cohorts.filter(function (c) { return c.newcomers > 0; });
    shown.forEach(function (cohort) {
      var tr = ns.el("tr", { attrs: { "data-start": cohort.start, "data-newcomers": cohort.newcomers } }, [
        ns.el("th", { text: cohort.start, attrs: { scope: "row" } }),
        ns.el("td", { className: "num", text: ns.formatInt(cohort.newcomers) }),
        ns.el("td", { className: "num", text: ns.formatPct(cohort.posted_pct), attrs: { "data-count": cohort.posted } }),
      ]);
      cohort.cells.forEach(function (cell) {
        var td = ns.el("td", {
          className: "num cohort-cell" + (cell.active === null ? " open" : ""),
          text: cell.active === null ? "" : ns.formatPct(cell.active_pct),
          attrs: {
            "data-offset": cell.offset,
            "data-count": cell.active === null ? "" : cell.active,
            title: cell.active === null
              ? "not over yet"
              : ns.formatInt(cell.active) + " of " + ns.formatInt(cohort.newcomers) + " posted",
          },
        });
        if (cell.active !== null) td.style.setProperty("--level", ((cell.active_pct || 0) / 100).toFixed(3));
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    table.hidden = !shown.length;
    status.textContent = shown.length ? "" : "No newcomers in this period.";
    status.hidden = !!shown.length;
  }

  function loadCohorts(granularity) {
    document.querySelectorAll("[data-cohort-granularity]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.getAttribute("data-cohort-granularity") === granularity ? "true" : "false");
    });
    $("csv-cohorts").setAttribute(
      "href",
      "/api/v1/" + base + "cohorts?format=csv&granularity=" + granularity + "&from=" + period.from + "&to=" + period.to
    );
    return load("cohorts", "cohorts", { granularity: granularity }).then(renderCohorts, function (error) {
      if (error && error.message === "signed out") return;
      $("cohorts-status").textContent = "Could not load cohorts: " + error.message;
      $("cohorts-status").className = "status alert";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!$("member-flow")) return;
    load("member_flow", "member-flow").then(renderFlow, failed($("join-sources")));
    loadCohorts("week");
    document.querySelectorAll("[data-cohort-granularity]").forEach(function (button) {
      button.addEventListener("click", function () {
        loadCohorts(button.getAttribute("data-cohort-granularity"));
      });
    });
  });
})();
