// One chat's page: every number is read from /api/v1/chats/{id}/... for the page's period.
(function () {
  "use strict";
  var ns = window.tgstats;
  var body = document.body;
  var chatId = body.getAttribute("data-chat-id");
  var timezone = body.getAttribute("data-timezone");
  var period = { from: body.getAttribute("data-from"), to: body.getAttribute("data-to") };
  var base = "chats/" + encodeURIComponent(chatId) + "/";
  var LONG_PERIOD_DAYS = 180;
  var gettext = ns.gettext;
  var ngettext = ns.ngettext;
  var WEEKDAYS = ns.weekdays;

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
      ns.setStatus(node, gettext("Could not load: {error}", { error: error && error.message ? error.message : error }), "error");
    };
  }

  // ------------------------------------------------------------------ KPI cards

  var KPI_FORMAT = {
    average_dau: ns.formatDecimal,
    media_share_pct: ns.formatPct,
  };

  function deltaText(key, metric) {
    if (key === "media_share_pct") {
      var points = metric.change;
      if (Math.abs(points) < 0.05) return { text: gettext("no change"), trend: "flat" };
      return { text: (points > 0 ? "▲ +" : "▼ ") + gettext("{value} pts", { value: ns.formatDecimal(points) }), trend: points > 0 ? "up" : "down" };
    }
    if (metric.change === 0) return { text: gettext("no change"), trend: "flat" };
    if (metric.change_pct === null) return { text: "▲ " + gettext("new (was 0)"), trend: "up" };
    var sign = metric.change_pct > 0 ? "▲ +" : "▼ ";
    return { text: sign + ns.formatDecimal(metric.change_pct) + " %", trend: metric.change > 0 ? "up" : "down" };
  }

  function renderKpis(summary) {
    document.querySelectorAll("[data-kpi]").forEach(function (card) {
      var key = card.getAttribute("data-kpi");
      var metric = summary[key];
      var value = card.querySelector(".kpi-value");
      var delta = card.querySelector(".kpi-delta");
      if (!metric) {
        value.textContent = "–";
        return;
      }
      var format = KPI_FORMAT[key] || ns.formatInt;
      value.textContent = format(metric.value);
      var change = deltaText(key, metric);
      delta.textContent = change.text;
      delta.setAttribute("data-trend", change.trend);
      delta.setAttribute("title", gettext("previous period: {value}", { value: format(metric.previous) }));
      card.setAttribute("data-status", "ready");
    });
  }

  function kpiError(error) {
    if (error && error.message === "signed out") return;
    document.querySelectorAll("[data-kpi] .kpi-value").forEach(function (node) {
      node.textContent = "–";
    });
    var kpis = $("kpis");
    var note = ns.el("p", { className: "alert", text: ns.gettext("Could not load the summary: {error}", { error: error.message }), attrs: { role: "alert" } });
    kpis.parentNode.insertBefore(note, kpis);
  }

  // ------------------------------------------------------------------ charts

  function total(values) {
    return values.reduce(function (sum, v) { return sum + v; }, 0);
  }

  function renderTimeseries(series) {
    var days = series.points.map(function (p) { return p.bucket; });
    var messages = series.points.map(function (p) { return p.messages; });
    var weekly = series.granularity === "week";
    var lines = [{ label: gettext("Messages"), kind: "bars", color: "--chart-1", values: messages }];
    if (series.rolling) {
      lines.push({
        label: weekly
          ? gettext("{n}-week average", { n: series.rolling })
          : gettext("{n}-day average", { n: series.rolling }),
        kind: "line",
        color: "--chart-3",
        decimals: true,
        values: series.points.map(function (p) { return p.messages_avg; }),
      });
    }
    ns.timeChart("messages", $("chart-messages"), {
      days: days,
      label: weekly
        ? gettext("Messages per week: {total} in total", { total: ns.formatInt(total(messages)) })
        : gettext("Messages per day: {total} in total", { total: ns.formatInt(total(messages)) }),
      series: lines,
    });
    ns.timeChart("dau", $("chart-dau"), {
      days: days,
      label: gettext("Daily and weekly active users per day"),
      series: [
        { label: "DAU", kind: "line", color: "--chart-2", values: series.points.map(function (p) { return p.dau; }), decimals: true },
        { label: "WAU", kind: "line", color: "--chart-3", values: series.points.map(function (p) { return p.wau; }) },
      ],
    });
  }

  function renderMembers(members) {
    var running = 0;
    var cumulative = members.days.map(function (d) { running += d.net; return running; });
    $("members-summary").textContent =
      ngettext("{n} member now", "{n} members now", members.members_now) + " · " +
      gettext("{joins} joined, {leaves} left (net {net})", {
        joins: ns.formatInt(members.joins),
        leaves: ns.formatInt(members.leaves),
        net: (members.net > 0 ? "+" : "") + ns.formatInt(members.net),
      }) + " · " +
      gettext("newcomers still posting after 7 days: {week}, after 30 days: {month}", {
        week: ns.formatPct(members.retention.retained_7d_pct),
        month: ns.formatPct(members.retention.retained_30d_pct),
      });
    $("inactive-heading").textContent = ngettext(
      "Quiet for {n}+ day: {count}", "Quiet for {n}+ days: {count}", members.inactive_days,
      { count: ns.formatInt(members.inactive_total) }
    );
    var quiet = ns.clear($("inactive-members"));
    members.inactive.slice(0, 10).forEach(function (m) {
      var when = m.days_inactive === null ? gettext("never posted") : ngettext("{n} day", "{n} days", m.days_inactive);
      quiet.appendChild(
        ns.el("li", { attrs: { "data-user-id": m.user_id } }, [
          ns.el("span", { className: "name", text: m.display_name }),
          ns.el("span", { className: "muted small", text: " — " + when }),
        ])
      );
    });
    ns.timeChart("members", $("chart-members"), {
      days: members.days.map(function (d) { return d.day; }),
      height: 220,
      label: gettext("Members joined and left per day, with the running net change"),
      series: [
        { label: gettext("Joined"), kind: "bars", color: "--chart-2", values: members.days.map(function (d) { return d.joins; }) },
        { label: gettext("Left"), kind: "bars", color: "--chart-4", values: members.days.map(function (d) { return -d.leaves; }) },
        { label: gettext("Net (cumulative)"), kind: "line", color: "--chart-1", values: cumulative },
      ],
    });
  }

  // ------------------------------------------------------------------ heatmap

  function renderHeatmap(heatmap) {
    var container = ns.clear($("heatmap"));
    var max = 0;
    heatmap.matrix.forEach(function (row) { row.forEach(function (v) { max = Math.max(max, v); }); });
    container.appendChild(ns.el("span", { className: "hm-corner" }));
    for (var hour = 0; hour < 24; hour++) {
      container.appendChild(ns.el("span", { className: "hm-hour", text: hour % 3 === 0 ? String(hour) : "" }));
    }
    heatmap.matrix.forEach(function (row, index) {
      container.appendChild(ns.el("span", { className: "hm-day", text: WEEKDAYS[index] }));
      row.forEach(function (count, hourOfDay) {
        var cell = ns.el("span", {
          className: "hm-cell",
          attrs: {
            "data-weekday": index + 1,
            "data-hour": hourOfDay,
            "data-count": count,
            title: WEEKDAYS[index] + " " + String(hourOfDay).padStart(2, "0") + ":00 – " + ngettext("{n} message", "{n} messages", count),
          },
        });
        cell.style.setProperty("--level", max ? (0.08 + 0.92 * (count / max)).toFixed(3) : "0");
        if (!count) cell.classList.add("zero");
        container.appendChild(cell);
      });
    });
    container.setAttribute("data-status", "ready");
    container.setAttribute(
      "aria-label",
      gettext("Messages by weekday and local hour; busiest cell {count}", { count: ngettext("{n} message", "{n} messages", max) })
    );
    document.dispatchEvent(new CustomEvent("tgstats:chart", { detail: { name: "heatmap" } }));
    var legend = ns.clear($("heatmap-legend"));
    legend.appendChild(ns.el("span", { text: "0" }));
    [0.08, 0.3, 0.55, 0.8, 1].forEach(function (level) {
      var swatch = ns.el("span", { className: "hm-cell" });
      swatch.style.setProperty("--level", String(level));
      legend.appendChild(swatch);
    });
    legend.appendChild(ns.el("span", { text: ngettext("{n} message", "{n} messages", max) }));
  }

  // ------------------------------------------------------------------ content sections

  function termRows(terms, limit) {
    return terms.slice(0, limit).map(function (t) {
      return { label: t.term, value: t.count };
    });
  }

  // Media type names as the API sends them (events.MEDIA_TYPES), shown in the page's language.
  var MEDIA_NAMES = {
    text: gettext("text"), photo: gettext("photo"), video: gettext("video"),
    animation: gettext("GIF"), sticker: gettext("sticker"), voice: gettext("voice message"),
    video_note: gettext("video message"), audio: gettext("audio"), document: gettext("file"),
    poll: gettext("poll"), location: gettext("location"), venue: gettext("venue"),
    contact: gettext("contact"), dice: gettext("dice"), game: gettext("game"),
    story: gettext("story"), giveaway: gettext("giveaway"), other: gettext("other"),
  };

  function renderMedia(media) {
    ns.renderBars(
      $("media"),
      media.types.map(function (t) {
        return { label: MEDIA_NAMES[t.media_type] || t.media_type, value: t.messages, valueText: ns.formatInt(t.messages) + " · " + ns.formatPct(t.share_pct) };
      })
    );
  }

  function renderReactions(reactions) {
    $("reactions-total").textContent = ngettext("{n} reaction in this period", "{n} reactions in this period", reactions.total);
    ns.renderBars($("reactions-emoji"), termRows(reactions.top_emoji, 10), { empty: gettext("No reactions in this period.") });
    var list = ns.clear($("reactions-messages"));
    reactions.top_messages.slice(0, 5).forEach(function (message) {
      // The name is user text: its own bidi island, so an override inside it cannot
      // reorder the date after it.
      var label = [
        ns.el("bdi", { text: message.display_name || gettext("Someone") }),
        document.createTextNode(", " + ns.formatDateTime(message.date, timezone)),
      ];
      var link = ns.safeLink(message.link);
      var what = link
        ? ns.el("a", { attrs: { href: link, rel: "noopener noreferrer", target: "_blank" } }, label)
        : ns.el("span", {}, label);
      var emoji = message.top_reactions.map(function (t) { return t.term + " " + t.count; }).join("  ");
      list.appendChild(
        ns.el("li", {}, [what, ns.el("span", { className: "muted small", text: " — " + ns.ngettext("{n} reaction", "{n} reactions", message.reactions) + "  " + emoji })])
      );
    });
  }

  function renderTopics(topics) {
    var table = $("topics-table");
    var status = $("topics-status");
    var tbody = ns.clear(table.querySelector("tbody"));
    topics.topics.forEach(function (topic) {
      var title = topic.title || (topic.topic_id === 0 ? gettext("General") : gettext("Topic {id}", { id: topic.topic_id }));
      tbody.appendChild(
        ns.el("tr", { attrs: { "data-topic-id": topic.topic_id } }, [
          ns.el("td", {}, [ns.el("span", { className: "name", text: title }), topic.closed ? ns.el("span", { className: "muted small", text: " (" + gettext("closed") + ")" }) : null]),
          ns.el("td", { className: "num", text: ns.formatInt(topic.messages) }),
          ns.el("td", { className: "num", text: ns.formatInt(topic.active_users) }),
          ns.el("td", { className: "num", text: ns.formatPct(topic.share_pct) }),
        ])
      );
    });
    var any = topics.topics.length > 0;
    table.hidden = !any;
    status.hidden = any;
    status.textContent = any ? "" : topics.is_forum ? gettext("No messages in any topic in this period.") : gettext("This chat has no forum topics.");
  }

  function renderInteractions(stats) {
    $("replies-total").textContent = ngettext(
      "{n} reply to another member in this period", "{n} replies to another member in this period", stats.total_replies
    );
    var list = ns.clear($("reply-pairs"));
    if (!stats.pairs.length) {
      list.appendChild(ns.el("li", { className: "muted", text: gettext("No replies between members in this period.") }));
      return;
    }
    stats.pairs.forEach(function (pair) {
      list.appendChild(
        ns.el("li", { attrs: { "data-from": pair.from_user_id, "data-to": pair.to_user_id, "data-count": pair.replies } }, [
          ns.el("span", { className: "name", text: pair.from_name }),
          ns.el("span", { className: "muted", text: " → " }),
          ns.el("span", { className: "name", text: pair.to_name }),
          ns.el("span", { className: "muted small", text: ": " + gettext("{replies} ({back} back)", { replies: ns.formatInt(pair.replies), back: ns.formatInt(pair.replies_back) }) }),
        ])
      );
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var membersTable = ns.membersTable({ chatId: chatId, period: period });
    membersTable.wire();
    load("interactions", "interactions", { limit: 10 }).then(renderInteractions, function (error) {
      if (error && error.message === "signed out") return;
      $("replies-total").textContent = gettext("Could not load replies: {error}", { error: error.message });
    });
    load("summary", "summary").then(renderKpis, kpiError);
    // A trailing 7-day average smooths weekly rhythm once there are enough days to show it;
    // past half a year, daily bars get too thin to read, so the charts count weeks.
    var days = Math.round((Date.parse(period.to) - Date.parse(period.from)) / 86400000) + 1;
    var weekly = days > LONG_PERIOD_DAYS;
    if (weekly) {
      $("h-messages").textContent = gettext("Messages per week");
      $("h-dau").textContent = gettext("Active users (weekly buckets)");
    }
    load("timeseries", "timeseries", {
      granularity: weekly ? "week" : "day",
      rolling: !weekly && days >= 14 ? 7 : null,
    }).then(renderTimeseries, function (error) {
      failed($("chart-messages"))(error);
      failed($("chart-dau"))(error);
    });
    load("heatmap", "heatmap").then(renderHeatmap, failed($("heatmap")));
    membersTable.load();
    load("media", "media").then(renderMedia, failed($("media")));
    load("words", "words", { limit: 20 }).then(function (words) {
      ns.renderBars($("words"), termRows(words.terms, 20), { empty: gettext("No words counted in this period.") });
    }, failed($("words")));
    load("reactions", "reactions").then(renderReactions, failed($("reactions-emoji")));
    load("links", "links").then(function (links) {
      ns.renderBars($("domains"), termRows(links.domains, 10), { empty: gettext("No links shared in this period.") });
    }, failed($("domains")));
    load("members", "members").then(renderMembers, failed($("chart-members")));
    load("topics", "topics").then(renderTopics, function (error) {
      if (error && error.message === "signed out") return;
      $("topics-status").textContent = gettext("Could not load topics: {error}", { error: error.message });
      $("topics-status").className = "status alert";
    });
  });
})();
