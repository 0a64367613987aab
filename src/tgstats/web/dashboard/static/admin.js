// A chat's admin page: its settings, its share links and tokens, and the service's background
// jobs with progress bars, read and changed through /api/v1 like any API client (admin.html). Names and labels are set through textContent.
(function () {
  "use strict";
  var ns = window.tgstats;
  var gettext = ns.gettext;
  var ngettext = ns.ngettext;
  var chatId = document.body.getAttribute("data-chat-id");
  var base = "chats/" + encodeURIComponent(chatId);

  function $(id) {
    return document.getElementById(id);
  }

  function status(node, text, kind) {
    node.textContent = text;
    node.className = "status" + (kind === "error" ? " alert" : "");
    node.setAttribute("data-status", kind || "ready");
  }

  // ------------------------------------------------------------------ settings

  function showSettings(settings) {
    ns.data.settings = settings;
    $("set-timezone").value = settings.timezone;
    $("set-locale").value = settings.locale;
    $("set-store-text").checked = settings.store_text;
    $("set-reactions").checked = settings.capture_reactions;
    $("set-text-days").value = settings.text_retention_days;
    $("set-metadata-days").value = settings.metadata_retention_days;
    $("settings-form").setAttribute("data-status", "ready");
  }

  function saveSettings(event) {
    event.preventDefault();
    var before = ns.data.settings || {};
    var wanted = {
      timezone: $("set-timezone").value.trim(),
      locale: $("set-locale").value,
      store_text: $("set-store-text").checked,
      capture_reactions: $("set-reactions").checked,
      text_retention_days: parseInt($("set-text-days").value, 10),
      metadata_retention_days: parseInt($("set-metadata-days").value, 10),
    };
    var changes = {};
    Object.keys(wanted).forEach(function (key) {
      if (wanted[key] !== before[key]) changes[key] = wanted[key];
    });
    var note = $("settings-status");
    if (!Object.keys(changes).length) {
      status(note, gettext("Nothing changed."));
      return;
    }
    $("settings-save").disabled = true;
    ns.send("PATCH", base + "/settings", changes).then(
      function (settings) {
        showSettings(settings);
        status(note, gettext("Saved."));
      },
      function (error) {
        status(note, gettext("Not saved: {error}", { error: error.message }), "error");
      }
    ).then(function () {
      $("settings-save").disabled = false;
    });
  }

  // ------------------------------------------------------------------ share links and tokens

  function dateText(iso) {
    return ns.formatDateTime(iso, document.body.getAttribute("data-timezone") || "UTC");
  }

  function showShares(links) {
    ns.data.shares = links;
    var list = ns.clear($("share-list"));
    if (!links.length) {
      list.appendChild(ns.el("li", { className: "muted", text: gettext("No share links are open.") }));
      return;
    }
    links.forEach(function (link) {
      var revoke = ns.el("button", { className: "button ghost small", text: gettext("Revoke"), attrs: { type: "button", "data-revoke": link.id } });
      list.appendChild(
        ns.el("li", { attrs: { "data-share-id": link.id } }, [
          ns.el("span", { text: "#" + link.id + (link.label ? " " + link.label : "") }),
          ns.el("span", {
            className: "muted small",
            text: " · " + gettext("made {date}", { date: dateText(link.created_at) }) + " · " +
              ngettext("opened {n} time", "opened {n} times", link.codes_used),
          }),
          document.createTextNode(" "),
          revoke,
        ])
      );
    });
  }

  function showTokens(tokens) {
    var list = ns.clear($("token-list"));
    var live = tokens.filter(function (t) { return !t.revoked_at && t.kind !== "share"; });
    if (!live.length) {
      list.appendChild(ns.el("li", { className: "muted", text: gettext("No read-only tokens are live.") }));
      return;
    }
    live.forEach(function (token) {
      list.appendChild(
        ns.el("li", { attrs: { "data-token-id": token.id } }, [
          ns.el("span", { text: "#" + token.id + (token.label ? " " + token.label : "") }),
          ns.el("span", { className: "muted small", text: " · " + gettext("made {date}", { date: dateText(token.created_at) }) }),
          document.createTextNode(" "),
          ns.el("button", { className: "button ghost small", text: gettext("Revoke"), attrs: { type: "button", "data-revoke-token": token.id } }),
        ])
      );
    });
  }

  // ------------------------------------------------------------------ jobs

  var JOB_STATUS = {
    queued: gettext("queued"),
    running: gettext("running"),
    done: gettext("done"),
    failed: gettext("failed"),
    cancelled: gettext("cancelled"),
  };

  function showJobs(jobs) {
    var list = ns.clear($("job-list"));
    if (!jobs.length) {
      list.appendChild(ns.el("li", { className: "muted", text: gettext("No background jobs yet.") }));
    }
    jobs.forEach(function (job) {
      var percent = job.progress.percent;
      var bar = ns.el("progress", { attrs: { "aria-label": job.kind } });
      bar.max = 100;
      if (percent !== null) bar.value = percent;  // no value: an indeterminate bar
      var parts = [
        ns.el("span", { className: "job-kind", text: job.kind }),
        ns.el("span", { className: "job-status job-" + job.status, text: " " + (JOB_STATUS[job.status] || job.status) }),
        document.createTextNode(" "),
        bar,
        ns.el("span", { className: "muted small job-percent", text: percent === null ? "" : " " + Math.round(percent) + "%" }),
      ];
      if (job.chat_id !== null) parts.push(ns.el("span", { className: "muted small", text: " · " + job.chat_id }));
      if (job.error) parts.push(ns.el("span", { className: "small alert job-error", text: " · " + job.error }));
      list.appendChild(ns.el("li", { attrs: { "data-job-id": job.id, "data-job-status": job.status } }, parts));
    });
    list.setAttribute("data-status", "ready");
    var busy = jobs.some(function (job) { return job.status === "queued" || job.status === "running"; });
    window.setTimeout(loadJobs, busy ? 2000 : 15000);
  }

  function loadJobs() {
    ns.api("jobs?limit=20").then(showJobs, function (error) {
      var list = ns.clear($("job-list"));
      list.appendChild(ns.el("li", { className: "alert", text: gettext("Could not load: {error}", { error: error.message }) }));
      list.setAttribute("data-status", "error");
    });
  }

  function reload() {
    ns.api(base + "/shares").then(showShares, function (error) {
      status($("share-new"), gettext("Could not load: {error}", { error: error.message }), "error");
    });
    ns.api(base + "/tokens").then(showTokens, function () {});
  }

  function createShare(event) {
    event.preventDefault();
    var label = $("share-label").value.trim();
    ns.send("POST", base + "/shares", label ? { label: label } : undefined).then(
      function (shared) {
        var address = shared.url || window.location.origin + shared.path;
        var note = ns.clear($("share-new"));
        note.className = "status";
        note.appendChild(document.createTextNode(gettext("Share link {number}, opens once until {time}:", {
          number: shared.id,
          time: dateText(shared.expires_at),
        }) + " "));
        note.appendChild(ns.el("code", { text: address, attrs: { id: "share-url" } }));
        note.setAttribute("data-status", "ready");
        $("share-label").value = "";
        reload();
      },
      function (error) {
        status($("share-new"), gettext("Not saved: {error}", { error: error.message }), "error");
      }
    );
  }

  function revokeClicked(event) {
    var share = event.target.getAttribute("data-revoke");
    var token = event.target.getAttribute("data-revoke-token");
    if (!share && !token) return;
    var path = share ? base + "/shares/" + share : base + "/tokens/" + token;
    ns.send("DELETE", path).then(reload, function (error) {
      status($("share-new"), gettext("Not saved: {error}", { error: error.message }), "error");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    ns.api(base + "/settings").then(showSettings, function (error) {
      status($("settings-status"), gettext("Could not load: {error}", { error: error.message }), "error");
    });
    $("settings-form").addEventListener("submit", saveSettings);
    $("share-form").addEventListener("submit", createShare);
    $("share-list").addEventListener("click", revokeClicked);
    $("token-list").addEventListener("click", revokeClicked);
    reload();
    loadJobs();
  });
})();
