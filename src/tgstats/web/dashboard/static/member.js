// One member's page: GET /api/v1/chats/{id}/users/{user_id} for the page's period.
(function () {
  "use strict";
  var ns = window.tgstats;
  var gettext = ns.gettext;
  var ngettext = ns.ngettext;
  var body = document.body;
  var chatId = body.getAttribute("data-chat-id");
  var userId = body.getAttribute("data-user-id");
  var timezone = body.getAttribute("data-timezone");
  var period = { from: body.getAttribute("data-from"), to: body.getAttribute("data-to") };
  var WEEKDAYS = [0, 1, 2, 3, 4, 5, 6].map(function (i) {
    return new Intl.DateTimeFormat(ns.lang, { weekday: "long", timeZone: "UTC" }).format(new Date(Date.UTC(2024, 0, 1 + i)));
  });

  function $(id) {
    return document.getElementById(id);
  }

  function dateOnly(iso) {
    return iso ? ns.formatDateTime(iso, timezone) : "–";
  }

  function setKpi(key, valueText, note) {
    var card = document.querySelector('[data-kpi="' + key + '"]');
    card.querySelector(".kpi-value").textContent = valueText;
    card.querySelector(".kpi-delta").textContent = note || "\u00a0";
    card.setAttribute("data-status", "ready");
  }

  // A member's status as Telegram names it (ChatMemberStatus), in the page's language.
  var STATUS_NAMES = {
    owner: gettext("owner"), creator: gettext("owner"), administrator: gettext("admin"),
    member: gettext("member"), restricted: gettext("restricted"), left: gettext("left the chat"),
    banned: gettext("banned"), kicked: gettext("banned"),
  };

  function render(profile) {
    var name = profile.display_name;
    $("member-name").textContent = name;
    document.title = gettext("{member} in {chat}", { member: name, chat: body.getAttribute("data-chat-title") }) + " · tgstats";
    var meta = [];
    if (profile.username) meta.push("@" + profile.username);
    if (profile.status) meta.push(STATUS_NAMES[profile.status] || profile.status);
    if (profile.joined_at) meta.push(gettext("joined {date}", { date: dateOnly(profile.joined_at) }));
    if (profile.left_at) meta.push(gettext("left {date}", { date: dateOnly(profile.left_at) }));
    meta.push(gettext("first message {date}", { date: dateOnly(profile.first_message_at) }));
    $("member-meta").textContent = meta.join(" · ");

    setKpi("messages", ns.formatInt(profile.messages), gettext("{media} with media, {links} links", { media: ns.formatInt(profile.media), links: ns.formatInt(profile.links) }));
    setKpi("share_pct", ns.formatPct(profile.share_pct));
    setKpi("rank", profile.rank === null ? "–" : "#" + ns.formatInt(profile.rank));
    setKpi("active_days", ns.formatInt(profile.active_days), gettext("last message {date}", { date: dateOnly(profile.last_message_at) }));
    setKpi(
      "longest_streak_days",
      ngettext("{n} day", "{n} days", profile.longest_streak_days),
      profile.longest_streak_start ? profile.longest_streak_start + " – " + profile.longest_streak_end : ""
    );
    setKpi("average_length", ns.formatDecimal(profile.average_length), gettext("characters per message"));
    setKpi("replies_sent", ns.formatInt(profile.replies_sent), gettext("{count} received", { count: ns.formatInt(profile.replies_received) }));
    setKpi("reactions_received", ns.formatInt(profile.reactions_received), gettext("{count} given", { count: ns.formatInt(profile.reactions_given) }));

    ns.timeChart("daily", $("chart-daily"), {
      days: profile.daily.map(function (d) { return d.day; }),
      label: gettext("Messages per day by {member}", { member: name }),
      series: [{ label: gettext("Messages"), kind: "bars", color: "--chart-1", values: profile.daily.map(function (d) { return d.count; }) }],
    });
    ns.categoryChart("hours", $("chart-hours"), {
      labels: profile.hours.map(function (_, hour) { return String(hour); }),
      labelEvery: 3,
      xLabel: gettext("Hour"),
      height: 220,
      label: gettext("Messages by local hour"),
      series: [{ label: gettext("Messages"), kind: "bars", color: "--chart-2", values: profile.hours }],
    });
    ns.renderBars(
      $("weekdays"),
      profile.weekdays.map(function (count, i) { return { label: WEEKDAYS[i], value: count }; }),
      { empty: gettext("No messages in this period.") }
    );
    if (profile.top_words_available) {
      ns.renderBars(
        $("member-words"),
        profile.top_words.map(function (t) { return { label: t.term, value: t.count }; }),
        { empty: gettext("No words counted in this period.") }
      );
    } else {
      // The API's note is English; the page says the same in its own language.
      ns.setStatus(
        $("member-words"),
        gettext("Words per member need stored text; this chat keeps only chat-wide word counts.")
      );
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var path = "chats/" + encodeURIComponent(chatId) + "/users/" + encodeURIComponent(userId);
    ns.api(path, { from: period.from, to: period.to, words: 20 }).then(
      function (profile) {
        ns.data.profile = profile;
        render(profile);
      },
      function (error) {
        if (error && error.message === "signed out") return;
        var box = $("member-error");
        box.textContent = gettext("Could not load this member: {error}", { error: error.message });
        box.hidden = false;
        ["chart-daily", "chart-hours", "weekdays", "member-words"].forEach(function (id) {
          ns.setStatus($(id), gettext("Not available."), "error");
        });
      }
    );
  });
})();
