// The chat page's members table: sort by a column, search by name, silent members, paging.
// Rows come from GET /api/v1/chats/{id}/users; names are set as text and link to profiles.
(function () {
  "use strict";
  var ns = window.tgstats;
  var gettext = ns.gettext;
  var ngettext = ns.ngettext;
  var USERS_PAGE = 15;

  function $(id) {
    return document.getElementById(id);
  }

  // options: {chatId, period: {from, to}}
  ns.membersTable = function (options) {
    var chatId = options.chatId;
    var period = options.period;
    var latest = 0;

    var users = { offset: 0, search: "", sort: "messages", order: "desc", lurkers: false };

    function renderUsers(board) {
      var table = $("users-table");
      var tbody = ns.clear(table.querySelector("tbody"));
      var status = $("users-status");
      board.rows.forEach(function (row) {
        var profile =
          "/chats/" + encodeURIComponent(chatId) + "/members/" + encodeURIComponent(row.user_id) +
          "?from=" + period.from + "&to=" + period.to;
        var name = ns.el("td", { className: "member" }, [
          ns.el("a", { className: "member-name", text: row.display_name, attrs: { href: profile } }),
          row.username ? ns.el("span", { className: "muted small member-username", text: "@" + row.username }) : null,
        ]);
        tbody.appendChild(
          ns.el("tr", { className: row.is_lurker ? "lurker" : "", attrs: { "data-user-id": row.user_id } }, [
            ns.el("td", { className: "num", text: row.rank === null ? "–" : row.rank }),
            name,
            ns.el("td", { className: "num", text: ns.formatInt(row.messages), attrs: { "data-field": "messages" } }),
            ns.el("td", { className: "num", text: ns.formatPct(row.share_pct), attrs: { "data-field": "share_pct" } }),
            ns.el("td", { className: "num", text: ns.formatInt(row.active_days), attrs: { "data-field": "active_days" } }),
            ns.el("td", { className: "num", text: ns.formatDecimal(row.average_length) }),
            ns.el("td", { className: "num", text: ns.formatInt(row.replies_sent) }),
            ns.el("td", { className: "num", text: ns.formatInt(row.reactions_received) }),
          ])
        );
      });
      table.hidden = board.rows.length === 0;
      status.textContent = board.rows.length ? "" : users.search ? gettext("No member matches that name.") : gettext("Nobody wrote in this period.");
      table.classList.toggle("with-lurkers", board.include_lurkers);
      status.hidden = board.rows.length > 0;
      var pager = $("users-pager");
      pager.hidden = board.total <= board.limit;
      pager.querySelector('[data-page="prev"]').disabled = board.offset === 0;
      pager.querySelector('[data-page="next"]').disabled = board.offset + board.rows.length >= board.total;
      $("users-range").textContent = board.rows.length
        ? gettext("{first}–{last} of {total}", {
            first: ns.formatInt(board.offset + 1),
            last: ns.formatInt(board.offset + board.rows.length),
            total: ns.formatInt(board.total),
          })
        : "";
    }

    function loadUsers() {
      var status = $("users-status");
      document.querySelectorAll("#users-table th[data-sort]").forEach(function (th) {
        var active = th.getAttribute("data-sort") === users.sort;
        if (active) th.setAttribute("aria-sort", users.order === "desc" ? "descending" : "ascending");
        else th.removeAttribute("aria-sort");
      });
      // Typing a search fires a request per pause; only the newest answer may render.
      var ticket = ++latest;
      var path = "chats/" + encodeURIComponent(chatId) + "/users";
      return ns.api(path, {
        from: period.from,
        to: period.to,
        limit: USERS_PAGE,
        offset: users.offset,
        search: users.search,
        sort: users.sort,
        order: users.order,
        lurkers: users.lurkers ? "true" : null,
      }).then(function (board) {
        if (ticket !== latest) return;
        ns.data.users = board;
        renderUsers(board);
      }, function (error) {
        if (ticket !== latest || (error && error.message === "signed out")) return;
        status.hidden = false;
        status.className = "status alert";
        status.textContent = gettext("Could not load members: {error}", { error: error.message });
      });
    }

    function wireUsers() {
      var timer = null;
      $("users-search").addEventListener("submit", function (event) { event.preventDefault(); });
      $("users-search").querySelector("input").addEventListener("input", function (event) {
        window.clearTimeout(timer);
        var value = event.target.value.trim();
        timer = window.setTimeout(function () {
          users.search = value;
          users.offset = 0;
          loadUsers();
        }, 250);
      });
      $("users-lurkers").addEventListener("change", function (event) {
        users.lurkers = event.target.checked;
        users.offset = 0;
        loadUsers();
      });
      $("users-table").querySelector("thead").addEventListener("click", function (event) {
        var th = event.target.closest ? event.target.closest("th[data-sort]") : null;
        if (!th) return;
        var key = th.getAttribute("data-sort");
        users.order = key === users.sort && users.order === "desc" ? "asc" : "desc";
        users.sort = key;
        users.offset = 0;
        loadUsers();
      });
      $("users-pager").addEventListener("click", function (event) {
        var which = event.target.getAttribute && event.target.getAttribute("data-page");
        if (!which) return;
        users.offset = Math.max(0, users.offset + (which === "next" ? USERS_PAGE : -USERS_PAGE));
        loadUsers();
      });
    }

    return { load: loadUsers, wire: wireUsers };
  };
})();
