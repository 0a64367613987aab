// The chat list: 30-day numbers per chat, straight from GET /api/v1/chats.
(function () {
  "use strict";
  var ns = window.tgstats;
  var TYPE_NAMES = {
    group: ns.gettext("group"),
    supergroup: ns.gettext("supergroup"),
    channel: ns.gettext("channel"),
  };
  var gettext = ns.gettext;
  var ngettext = ns.ngettext;

  function chatName(chat) {
    return chat.title || (chat.username ? "@" + chat.username : gettext("Chat {id}", { id: chat.chat_id }));
  }

  function render(list) {
    var table = document.getElementById("chats-table");
    var status = document.getElementById("chats-status");
    var tbody = ns.clear(table.querySelector("tbody"));
    list.chats.forEach(function (chat) {
      var link = ns.el("a", { className: "chat-link", text: chatName(chat), attrs: { href: "/chats/" + encodeURIComponent(chat.chat_id) } });
      var meta = (TYPE_NAMES[chat.chat_type] || chat.chat_type) + (chat.is_forum ? " · " + ns.gettext("topics") : "") +
        (chat.bot_present ? "" : " · " + ns.gettext("bot not in chat"));
      tbody.appendChild(
        ns.el("tr", { attrs: { "data-chat-id": chat.chat_id } }, [
          ns.el("td", {}, [link, ns.el("span", { className: "muted small chat-meta", text: meta })]),
          ns.el("td", { className: "num", text: ns.formatInt(chat.messages_30d), attrs: { "data-field": "messages_30d" } }),
          ns.el("td", { className: "num", text: ns.formatDecimal(chat.average_dau_30d), attrs: { "data-field": "average_dau_30d" } }),
          ns.el("td", { className: "num", text: ns.formatInt(chat.members), attrs: { "data-field": "members" } }),
          ns.el("td", { text: chat.last_active_day || ns.gettext("never") }),
          ns.el("td", { className: "muted", text: chat.timezone }),
        ])
      );
    });
    table.hidden = list.chats.length === 0;
    status.textContent = list.chats.length ? "" : gettext("No chats yet: add the bot to a group, or import an export.");
    status.hidden = list.chats.length > 0;
  }

  document.addEventListener("DOMContentLoaded", function () {
    ns.api("chats").then(
      function (list) {
        ns.data.chats = list;
        render(list);
      },
      function (error) {
        if (error && error.message === "signed out") return;
        var status = document.getElementById("chats-status");
        status.className = "status alert";
        status.textContent = gettext("Could not load the chats: {error}", { error: error.message });
      }
    );
  });
})();
