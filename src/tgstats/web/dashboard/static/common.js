// Shared helpers for the dashboard pages: API access, DOM building, messages and number
// formatting in the page's language. User-supplied text (names, titles, words) is only ever
// set through textContent.
(function () {
  "use strict";
  var ns = (window.tgstats = window.tgstats || {});
  ns.data = ns.data || {}; // the last API answer per section (read by the browser tests)
  ns.charts = ns.charts || {};

  // The page's language (<html lang>) and its messages (the server's gettext catalog,
  // embedded as JSON data in #i18n-catalog; English is the msgids themselves).
  var lang = document.documentElement.getAttribute("lang") || "en";
  ns.lang = lang;
  var catalog = { messages: {}, plurals: {} };
  try {
    var source = document.getElementById("i18n-catalog");
    if (source) catalog = JSON.parse(source.textContent) || catalog;
  } catch (e) {
    // a broken catalog shows English rather than nothing
  }
  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (whole, name) {
      return values && values[name] !== undefined && values[name] !== null ? String(values[name]) : whole;
    });
  }
  // gettext("Could not load: {error}", {error: e.message}): the message in the page's language.
  ns.gettext = function (message, values) {
    var text = (catalog.messages || {})[message];
    return fill(typeof text === "string" && text ? text : message, values);
  };
  var pluralRules = window.Intl && Intl.PluralRules ? new Intl.PluralRules(lang) : null;
  // ngettext("{n} day", "{n} days", 3): the form for n (Russian has three); {n} is n formatted.
  ns.ngettext = function (singular, plural, n, values) {
    var forms = (catalog.plurals || {})[singular];
    var text = null;
    if (forms && pluralRules) {
      var category = pluralRules.select(n);
      text = forms[category] || forms.many || forms.other || null;
    }
    if (!text) text = n === 1 ? singular : plural;
    var all = { n: ns.formatInt(n) };
    Object.keys(values || {}).forEach(function (key) { all[key] = values[key]; });
    return fill(text, all);
  };

  var integer = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
  var decimal = new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  // Monday first, short names in the page's language (2024-01-01 was a Monday).
  ns.weekdays = [0, 1, 2, 3, 4, 5, 6].map(function (i) {
    return new Intl.DateTimeFormat(lang, { weekday: "short", timeZone: "UTC" }).format(
      new Date(Date.UTC(2024, 0, 1 + i))
    );
  });

  ns.formatInt = function (value) {
    return value === null || value === undefined ? "–" : integer.format(value);
  };
  ns.formatDecimal = function (value) {
    return value === null || value === undefined ? "–" : decimal.format(value);
  };
  ns.formatPct = function (value) {
    return value === null || value === undefined ? "–" : decimal.format(value) + " %";
  };
  ns.formatDateTime = function (iso, timeZone) {
    if (!iso) return "–";
    try {
      return new Intl.DateTimeFormat(lang, {
        dateStyle: "medium",
        timeStyle: "short",
        timeZone: timeZone || "UTC",
      }).format(new Date(iso));
    } catch (e) {
      return iso;
    }
  };

  // el("td", {className: "num", text: "12", attrs: {title: "x"}}, [children]): never parses HTML.
  var SAFE_ATTRS = /^(title|href|rel|target|scope|colspan|role|aria-[a-z-]+|data-[a-z0-9-]+|id|type|name|value|hidden|datetime)$/;
  ns.el = function (tag, props, children) {
    var node = document.createElement(tag);
    props = props || {};
    if (props.className) node.className = props.className;
    if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
    var attrs = props.attrs || {};
    Object.keys(attrs).forEach(function (name) {
      if (!SAFE_ATTRS.test(name)) throw new Error("attribute not allowed: " + name);
      if (attrs[name] !== null && attrs[name] !== undefined) node.setAttribute(name, String(attrs[name]));
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(child);
    });
    return node;
  };

  ns.clear = function (node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  };

  // A status line inside a section: "Loading…", "Nothing in this period", or an error.
  ns.setStatus = function (node, text, kind) {
    ns.clear(node);
    node.appendChild(ns.el("p", { className: "status" + (kind === "error" ? " alert" : ""), text: text }));
    node.setAttribute("data-status", kind || "empty");
  };

  // Only https t.me links from the API become clickable.
  ns.safeLink = function (url) {
    return typeof url === "string" && /^https:\/\/t\.me\//.test(url) ? url : null;
  };

  function signIn() {
    var next = window.location.pathname + window.location.search;
    window.location.assign("/login?next=" + encodeURIComponent(next));
  }

  // GET /api/v1/<path> with query params; rejects with an Error carrying the API's message.
  ns.api = function (path, params) {
    var query = new URLSearchParams();
    Object.keys(params || {}).forEach(function (key) {
      var value = params[key];
      if (value !== null && value !== undefined && value !== "") query.set(key, String(value));
    });
    var url = "/api/v1/" + path + (query.toString() ? "?" + query.toString() : "");
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(
      function (response) {
        if (response.status === 401) {
          signIn();
          throw new Error("signed out");
        }
        return response.json().then(
          function (body) {
            if (!response.ok) {
              var message = body && body.error && body.error.message;
              throw new Error(message || ns.gettext("the server answered {status}", { status: response.status }));
            }
            return body;
          },
          function () {
            throw new Error(ns.gettext("the server answered {status} without JSON", { status: response.status }));
          }
        );
      }
    );
  };

  // A change through the API (POST/PATCH/DELETE) as the signed-in dashboard user:
  // tgstats.send("PATCH", "chats/1/settings", {timezone: "Europe/Berlin"}).
  // The session cookie alone is not enough for a change: the server also wants the
  // page's CSRF token in X-CSRF-Token (a page on another site cannot read it) and
  // a JSON body sent as application/json. Resolves with the parsed answer (or null).
  ns.send = function (method, path, body) {
    var meta = document.querySelector('meta[name="tgstats-csrf"]');
    var headers = { Accept: "application/json", "X-Requested-With": "tgstats-dashboard" };
    if (meta) headers["X-CSRF-Token"] = meta.getAttribute("content");
    var init = { method: method, credentials: "same-origin", headers: headers };
    if (body !== undefined && body !== null) {
      if (typeof Blob !== "undefined" && body instanceof Blob) {
        headers["Content-Type"] = body.type === "application/json" ? body.type : "application/octet-stream";
        init.body = body;
      } else {
        headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
      }
    }
    return fetch("/api/v1/" + path, init).then(function (response) {
      if (response.status === 401) {
        signIn();
        throw new Error("signed out");
      }
      if (response.status === 204) return null;
      return response.json().then(
        function (answer) {
          if (!response.ok) {
            var error = answer && answer.error;
            var detail = error && error.details && error.details[0] && (error.details[0].message || error.details[0].reason);
            throw new Error((error && error.message ? error.message : String(response.status)) + (detail ? ": " + detail : ""));
          }
          return answer;
        },
        function () {
          throw new Error(ns.gettext("the server answered {status} without JSON", { status: response.status }));
        }
      );
    });
  };

  // Horizontal bar list: [{label, value, share}] where share is 0..100 of the widest bar.
  ns.renderBars = function (container, rows, options) {
    options = options || {};
    ns.clear(container);
    if (!rows.length) {
      ns.setStatus(container, options.empty || ns.gettext("Nothing in this period."));
      return;
    }
    var max = rows.reduce(function (m, r) { return Math.max(m, r.value); }, 0) || 1;
    var list = ns.el("ul", { className: "bar-list" });
    rows.forEach(function (row) {
      var fill = ns.el("span", { className: "bar-fill" });
      fill.style.setProperty("--share", ((row.value / max) * 100).toFixed(2) + "%");
      list.appendChild(
        ns.el("li", { className: "bar-row", attrs: { "data-term": row.label, "data-count": row.value } }, [
          ns.el("span", { className: "bar-label", text: row.label, attrs: { title: row.label } }),
          ns.el("span", { className: "bar-track" }, [fill]),
          ns.el("span", { className: "bar-value num", text: row.valueText || ns.formatInt(row.value) }),
        ])
      );
    });
    container.appendChild(list);
    container.setAttribute("data-status", "ready");
  };

  // The language switch submits itself when a language is picked (its button is for no-JS).
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("language-select");
    if (select && select.form) {
      select.addEventListener("change", function () { select.form.submit(); });
      var apply = document.getElementById("language-apply");
      if (apply) apply.hidden = true;
    }
  });
})();
