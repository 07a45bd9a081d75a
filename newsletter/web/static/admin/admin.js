/* Small progressive enhancements of the editor's pages; every page works without them.
   - Tabs: the preview's 375 px / 640 px / text / checks panes become keyboard-usable tabs
     (WAI-ARIA Authoring Practices "Tabs" pattern: arrows move, Home/End jump).
   - htmx sends the CSRF token of the page with every request it makes. */
(function () {
  "use strict";

  function initTabs(root) {
    var list = root.querySelector('[role="tablist"]');
    if (!list) return;
    var tabs = Array.prototype.slice.call(list.querySelectorAll('[role="tab"]'));
    function select(tab, focus) {
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
      });
      if (focus) tab.focus();
      try { sessionStorage.setItem("preview-tab", tab.id); } catch (e) { /* private mode */ }
    }
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(tab, false); });
      tab.addEventListener("keydown", function (ev) {
        var next = null;
        if (ev.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
        else if (ev.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
        else if (ev.key === "Home") next = tabs[0];
        else if (ev.key === "End") next = tabs[tabs.length - 1];
        if (next) { ev.preventDefault(); select(next, true); }
      });
    });
    list.hidden = false;
    root.classList.add("tabbed");
    var saved = null;
    try { saved = document.getElementById(sessionStorage.getItem("preview-tab") || ""); } catch (e) { saved = null; }
    select(saved && tabs.indexOf(saved) >= 0 ? saved : tabs[0], false);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-tabs]"), initTabs);
  });

  document.addEventListener("htmx:configRequest", function (ev) {
    var field = document.querySelector('input[name="csrf_token"]');
    if (field && !ev.detail.parameters["csrf_token"]) {
      ev.detail.parameters.csrf_token = field.value;
    }
  });
})();
