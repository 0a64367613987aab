// The chat list: one page of GET /api/v1/chats at a time, sorted, searched and filtered
// by the server. The page's state lives in the address (?search=&sort=&order=&filter=&page=),
// so reloading or going back shows the same page.
(function () {
  "use strict";
  var ns = window.tgstats;
  var TYPE_NAMES = {
    group: ns.gettext("group"),
    supergroup: ns.gettext("supergroup"),
    channel: ns.gettext("channel"),
  };
  var gettext = ns.gettext;
  var PAGE = 50;
  var SORTS = ["messages_30d", "average_dau_30d", "members", "last_active_day", "title"];
  var FILTERS = { active: { active: "true" }, bot: { bot_present: "true" }, imported: { imported: "true" } };

  function $(id) {
    return document.getElementById(id);
  }

  function chatName(chat) {
    return chat.title || (chat.username ? "@" + chat.username : gettext("Chat {id}", { id: chat.chat_id }));
  }

  function fromAddress() {
    var query = new URLSearchParams(window.location.search);
    var sort = SORTS.indexOf(query.get("sort")) >= 0 ? query.get("sort") : "messages_30d";
    var order = query.get("order") === "asc" || query.get("order") === "desc" ? query.get("order") : sort === "title" ? "asc" : "desc";
    var page = parseInt(query.get("page") || "1", 10);
    return {
      search: (query.get("search") || "").slice(0, 100),
      sort: sort,
      order: order,
      filter: FILTERS[query.get("filter")] ? query.get("filter") : "",
      offset: (isFinite(page) && page > 1 ? page - 1 : 0) * PAGE,
    };
  }

  var state = fromAddress();
  var latest = 0;

  function toAddress() {
    var query = new URLSearchParams();
    if (state.search) query.set("search", state.search);
    if (state.sort !== "messages_30d") query.set("sort", state.sort);
    if (state.order !== (state.sort === "title" ? "asc" : "desc")) query.set("order", state.order);
    if (state.filter) query.set("filter", state.filter);
    if (state.offset) query.set("page", String(state.offset / PAGE + 1));
    var text = query.toString();
    window.history.replaceState(null, "", window.location.pathname + (text ? "?" + text : ""));
  }

  function render(list) {
    var table = $("chats-table");
    var status = $("chats-status");
    var tbody = ns.clear(table.querySelector("tbody"));
    list.chats.forEach(function (chat) {
      var link = ns.el("a", { className: "chat-link", text: chatName(chat), attrs: { href: "/chats/" + encodeURIComponent(chat.chat_id) } });
      var meta = (TYPE_NAMES[chat.chat_type] || chat.chat_type) + (chat.is_forum ? " · " + ns.gettext("topics") : "") +
        (chat.bot_present ? "" : " · " + ns.gettext("bot not in chat"));
      tbody.appendChild(
        ns.el("tr", { attrs: { "data-chat-id": chat.chat_id } }, [
          ns.el("td", {}, [link, ns.el("span", { className: "muted small chat-meta", text: meta })]),
          ns.el("td", { className: "num", text: ns.formatInt(chat.messages_30d), attrs: { "data-field": "messages_30d" } }),
          ns.el("td", { className: "num optional", text: ns.formatDecimal(chat.average_dau_30d), attrs: { "data-field": "average_dau_30d" } }),
          ns.el("td", { className: "num", text: ns.formatInt(chat.members), attrs: { "data-field": "members" } }),
          ns.el("td", { className: "optional", text: chat.last_active_day || ns.gettext("never"), attrs: { "data-field": "last_active_day" } }),
          ns.el("td", { className: "muted optional", text: chat.timezone }),
        ])
      );
    });
    var searching = state.search || state.filter;
    table.hidden = list.chats.length === 0;
    status.className = "status";
    status.textContent = list.chats.length
      ? ""
      : searching
        ? gettext("No chat matches.")
        : gettext("No chats yet: add the bot to a group, or import an export.");
    status.hidden = list.chats.length > 0;
    var pager = $("chats-pager");
    pager.hidden = list.total <= PAGE && list.offset === 0;
    pager.querySelector('[data-page="prev"]').disabled = list.offset === 0;
    pager.querySelector('[data-page="next"]').disabled = list.offset + list.chats.length >= list.total;
    $("chats-range").textContent = list.chats.length
      ? gettext("{first}–{last} of {total}", {
          first: ns.formatInt(list.offset + 1),
          last: ns.formatInt(list.offset + list.chats.length),
          total: ns.formatInt(list.total),
        })
      : "";
  }

  function load() {
    toAddress();
    var ticket = ++latest;  // only the newest answer may render (typing fires several)
    var params = { limit: PAGE, offset: state.offset, sort: state.sort, order: state.order, search: state.search };
    var filter = FILTERS[state.filter] || {};
    Object.keys(filter).forEach(function (key) {
      params[key] = filter[key];
    });
    return ns.api("chats", params).then(
      function (list) {
        if (ticket !== latest) return;
        ns.data.chats = list;
        render(list);
      },
      function (error) {
        if (ticket !== latest || (error && error.message === "signed out")) return;
        var status = $("chats-status");
        status.hidden = false;
        status.className = "status alert";
        status.textContent = gettext("Could not load the chats: {error}", { error: error.message });
      }
    );
  }

  function wire() {
    var timer = null;
    $("chats-search").value = state.search;
    $("chats-sort").value = state.sort;
    $("chats-order").value = state.order;
    $("chats-filter").value = state.filter;
    $("chats-controls").addEventListener("submit", function (event) {
      event.preventDefault();
    });
    $("chats-search").addEventListener("input", function (event) {
      window.clearTimeout(timer);
      var value = event.target.value.trim();
      timer = window.setTimeout(function () {
        state.search = value;
        state.offset = 0;
        load();
      }, 250);
    });
    $("chats-sort").addEventListener("change", function (event) {
      state.sort = event.target.value;
      state.order = state.sort === "title" ? "asc" : "desc";
      $("chats-order").value = state.order;
      state.offset = 0;
      load();
    });
    $("chats-order").addEventListener("change", function (event) {
      state.order = event.target.value;
      state.offset = 0;
      load();
    });
    $("chats-filter").addEventListener("change", function (event) {
      state.filter = event.target.value;
      state.offset = 0;
      load();
    });
    $("chats-pager").addEventListener("click", function (event) {
      var which = event.target.getAttribute && event.target.getAttribute("data-page");
      if (!which) return;
      state.offset = Math.max(0, state.offset + (which === "next" ? PAGE : -PAGE));
      load();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    wire();
    load();
  });
})();
