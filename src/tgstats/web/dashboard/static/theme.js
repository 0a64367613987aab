// Light/dark theme. Loaded in <head> (not deferred) so the stored choice applies before the
// first paint. With no stored choice the page follows prefers-color-scheme.
(function () {
  "use strict";
  var KEY = "tgstats-theme";
  var root = document.documentElement;
  var media = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  var unsaved = null; // the choice made while localStorage is unavailable

  function stored() {
    try {
      var value = window.localStorage.getItem(KEY);
      if (value === "dark" || value === "light") return value;
    } catch (e) {
      // storage disabled (private mode, policy): fall back to this page's memory
    }
    return unsaved;
  }

  function effective() {
    return stored() || (media && media.matches ? "dark" : "light");
  }

  function apply() {
    var choice = stored();
    if (choice) root.setAttribute("data-theme", choice);
    else root.removeAttribute("data-theme");
    var theme = effective();
    var button = document.getElementById("theme-toggle");
    if (button) {
      button.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
      var label = button.querySelector(".theme-label");
      // The labels come from the page, in its language.
      var text = button.getAttribute(theme === "dark" ? "data-label-light" : "data-label-dark");
      if (label && text) label.textContent = text;
    }
    document.dispatchEvent(new CustomEvent("tgstats:theme", { detail: { theme: theme } }));
  }

  function toggle() {
    var next = effective() === "dark" ? "light" : "dark";
    unsaved = next;
    try {
      window.localStorage.setItem(KEY, next);
    } catch (e) {
      // not remembered across pages, still applied on this one
    }
    apply();
  }

  apply();
  if (media && media.addEventListener) media.addEventListener("change", apply);
  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (button) button.addEventListener("click", toggle);
    apply();
  });
  window.tgstatsTheme = { effective: effective, toggle: toggle };
})();
