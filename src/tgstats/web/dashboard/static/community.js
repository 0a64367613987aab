// Member flow and retention cohorts on a chat's page: numbers from /member-flow and /cohorts.
(function () {
  "use strict";
  var ns = window.tgstats;
  var body = document.body;
  var chatId = body.getAttribute("data-chat-id");
  var period = { from: body.getAttribute("data-from"), to: body.getAttribute("data-to") };
  var base = "chats/" + encodeURIComponent(chatId) + "/";
  var SOURCE_NAMES = {
    link: ns.gettext("Invite link"),
    added: ns.gettext("Added by a member"),
    request: ns.gettext("Join request"),
    folder: ns.gettext("Folder link"),
    direct: ns.gettext("By themselves"),
    unknown: ns.gettext("Not recorded"),
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
      ns.setStatus(node, ns.gettext("Could not load: {error}", { error: error && error.message ? error.message : error }), "error");
    };
  }

  // A ranked list of members: the name (user text, isolated) and what they did; describe(row)
  // gives [the count the row is ranked by, the line shown after the name].
  function peopleList(list, rows, emptyText, describe) {
    ns.clear(list);
    if (!rows.length) list.appendChild(ns.el("li", { className: "muted", text: emptyText }));
    rows.forEach(function (row) {
      var described = describe(row);
      list.appendChild(
        ns.el("li", { attrs: { "data-user-id": row.user_id, "data-count": described[0] } }, [
          ns.el("span", { className: "name", text: row.display_name }),
          ns.el("span", { className: "muted small", text: " · " + described[1] }),
        ])
      );
    });
  }

  function renderFlow(flow) {
    ns.renderBars(
      $("join-sources"),
      flow.sources.filter(function (s) { return s.joins > 0; }).map(function (s) {
        return { label: SOURCE_NAMES[s.source] || s.source, value: s.joins };
      }),
      { empty: ns.gettext("Nobody joined in this period.") }
    );
    ns.renderBars(
      $("invite-links"),
      flow.invite_links.map(function (link) { return { label: link.label, value: link.joins }; }),
      { empty: ns.gettext("No joins through a known invite link.") }
    );
    peopleList($("top-inviters"), flow.top_inviters, ns.gettext("Nobody brought anyone in this period."), function (row) {
      return [row.joins, ns.gettext("{joins} ({added} added, {via_link} by their links)", {
        joins: ns.formatInt(row.joins), added: ns.formatInt(row.added), via_link: ns.formatInt(row.via_link),
      })];
    });
    var k = flow.leave_kinds;
    $("leave-kinds").textContent = ns.gettext("{left} left · {kicked} removed · {banned} banned", {
      left: ns.formatInt(k.left), kicked: ns.formatInt(k.kicked), banned: ns.formatInt(k.banned),
    });
  }

  function renderCohorts(result) {
    var table = $("cohort-table");
    var status = $("cohorts-status");
    // "+4 wk": how long after joining; the unit is the cohorts' granularity.
    var offsetLabel = result.granularity === "week"
      ? function (k) { return ns.gettext("+{n} wk", { n: k }); }
      : function (k) { return ns.gettext("+{n} mo", { n: k }); };
    var head = ns.clear(table.querySelector("thead tr"));
    [ns.gettext("Joined"), ns.gettext("Newcomers"), ns.gettext("Posted")].forEach(function (label, i) {
      head.appendChild(ns.el("th", { className: i ? "num" : "", text: label, attrs: { scope: "col" } }));
    });
    result.offsets.forEach(function (k) {
      head.appendChild(ns.el("th", { className: "num", text: offsetLabel(k), attrs: { scope: "col" } }));
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
              ? ns.gettext("not over yet")
              : ns.gettext("{active} of {newcomers} posted", {
                active: ns.formatInt(cell.active), newcomers: ns.formatInt(cohort.newcomers),
              }),
          },
        });
        if (cell.active !== null) td.style.setProperty("--level", ((cell.active_pct || 0) / 100).toFixed(3));
        tr.appendChild(td);
      });
      rows.appendChild(tr);
    });
    table.hidden = !shown.length;
    status.textContent = shown.length ? "" : ns.gettext("No newcomers in this period.");
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
      $("cohorts-status").textContent = ns.gettext("Could not load cohorts: {error}", { error: error.message });
      $("cohorts-status").className = "status alert";
    });
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 60) return ns.gettext("{n} s", { n: Math.round(seconds) });
    if (seconds < 3600) return ns.gettext("{n} min", { n: Math.round(seconds / 60) });
    if (seconds < 86400) return ns.gettext("{n} h", { n: ns.formatDecimal(seconds / 3600) });
    return ns.gettext("{n} d", { n: ns.formatDecimal(seconds / 86400) });
  }

  function renderResponseSummary(node, title, s) {
    ns.clear(node);
    node.appendChild(ns.el("h3", { text: title }));
    if (!s.asked) {
      node.appendChild(ns.el("p", { className: "status", text: ns.gettext("None in this period.") }));
      node.setAttribute("data-status", "empty");
      return;
    }
    var facts = [
      ["asked", ns.gettext("Asked"), ns.formatInt(s.asked)],
      ["answered", ns.gettext("Answered"), ns.formatInt(s.answered)],
      ["unanswered", ns.gettext("Never answered"), ns.formatInt(s.unanswered) + " (" + ns.formatPct(s.unanswered_pct) + ")"],
      ["waiting", ns.gettext("Still waiting"), ns.formatInt(s.waiting)],
      ["median", ns.gettext("Median wait"), duration(s.median_seconds)],
      ["p90", ns.gettext("9 in 10 within"), duration(s.p90_seconds)],
      ["within_1h", ns.gettext("Within an hour"), ns.formatPct(s.within_1h_pct)],
    ];
    var list = ns.el("dl", { className: "facts" });
    facts.forEach(function (fact) {
      list.appendChild(ns.el("dt", { text: fact[1] }));
      list.appendChild(ns.el("dd", { text: fact[2], attrs: { "data-fact": fact[0] } }));
    });
    node.appendChild(list);
    node.setAttribute("data-status", "ready");
  }

  function renderResponses(result) {
    renderResponseSummary($("responses-questions"), ns.gettext("Questions"), result.questions);
    renderResponseSummary($("responses-newcomers"), ns.gettext("Newcomers' first messages"), result.newcomers);
    peopleList($("top-responders"), result.top_responders, ns.gettext("Nobody answered in this period."), function (row) {
      return [row.total, ns.gettext("{total} ({questions} questions, {newcomers} newcomers)", {
        total: ns.formatInt(row.total), questions: ns.formatInt(row.questions), newcomers: ns.formatInt(row.newcomers),
      })];
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!$("member-flow")) return;
    load("response_times", "response-times").then(renderResponses, function (error) {
      failed($("responses-questions"))(error);
      failed($("responses-newcomers"))(error);
    });
    load("member_flow", "member-flow").then(renderFlow, failed($("join-sources")));
    loadCohorts("week");
    document.querySelectorAll("[data-cohort-granularity]").forEach(function (button) {
      button.addEventListener("click", function () {
        loadCohorts(button.getAttribute("data-cohort-granularity"));
      });
    });
  });
})();
