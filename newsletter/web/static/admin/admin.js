/* Small progressive enhancements of the editor's pages; every page works without them.
   - Tabs: the preview's 375 px / 640 px / text / checks panes become keyboard-usable tabs
     (WAI-ARIA Authoring Practices "Tabs" pattern: arrows move, Home/End jump).
   - htmx sends the CSRF token of the page with every request it makes.
   - Items can be dragged by their handle (pointer events: mouse, pen and touch); the new order
     is saved at once through the editor's own Save (so the conflict check applies). The Up and
     Down buttons remain the keyboard's way.
   - "Regenerate summary" asks the server for a new blurb and puts it in the Summary field. */
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

  /* The editor's Add button: save the edits, then fetch the pasted links one at a time so each
     link's progress and outcome show as they happen; reload at the end (the file has grown).
     Without a script (or on a conflict) the form posts as usual and the server does it all. */
  var LINK = /https?:\/\/\S+/g;
  var STORE = "link-results:" + location.pathname;

  function showResult(list, kind, url, why) {
    var li = document.createElement("li");
    li.className = "result " + kind;
    var badge = document.createElement("span");
    badge.className = "badge " + kind;
    badge.textContent = kind;
    var mono = document.createElement("span");
    mono.className = "mono";
    mono.textContent = url;
    li.appendChild(badge);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(mono);
    if (why && kind !== "added") li.appendChild(document.createTextNode(": " + why));
    list.appendChild(li);
    return li;
  }

  function initLinks(form) {
    var panel = document.getElementById("link-results");
    if (!panel || !window.fetch || !window.FormData) return;
    var list = panel.querySelector("ul");
    var kept = null;
    try { kept = JSON.parse(sessionStorage.getItem(STORE) || "null"); sessionStorage.removeItem(STORE); } catch (e) { kept = null; }
    if (kept && kept.length) {
      list.textContent = "";
      kept.forEach(function (r) { showResult(list, r.kind, r.url, r.why); });
      panel.hidden = false;
    }
    form.addEventListener("submit", function (ev) {
      if (!ev.submitter || ev.submitter.value !== "add") return;
      var links = (form.elements.links.value.match(LINK) || []).filter(function (u, i, all) { return all.indexOf(u) === i; });
      if (!links.length) return;       // the server explains what is wrong
      ev.preventDefault();
      var buttons = form.querySelectorAll("button");
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
      var data = new FormData(form);
      data.set("action", "save");
      fetch(form.getAttribute("action"), { method: "POST", body: data, credentials: "same-origin" }).then(function (resp) {
        if (!resp.ok) { fallback(); return; }
        list.textContent = "";
        panel.hidden = false;
        var results = [];
        var chain = Promise.resolve();
        links.forEach(function (url, i) {
          chain = chain.then(function () {
            var li = showResult(list, "fetching", url, "");
            li.lastChild.textContent = url + " (" + (i + 1) + " of " + links.length + ")…";
            var one = new FormData();
            one.set("csrf_token", form.elements.csrf_token.value);
            one.set("links", url);
            one.set("section", form.elements.section.value);
            return fetch(form.dataset.linkUrl, { method: "POST", body: one, credentials: "same-origin" })
              .then(function (r) { return r.ok ? r.json() : { results: [{ kind: "failed", url: url, why: "the server answered " + r.status }] }; })
              .catch(function () { return { results: [{ kind: "failed", url: url, why: "the server could not be reached" }] }; })
              .then(function (body) {
                list.removeChild(li);
                body.results.forEach(function (r) { results.push(r); showResult(list, r.kind, r.url, r.why); });
              });
          });
        });
        chain.then(function () {
          try { sessionStorage.setItem(STORE, JSON.stringify(results)); } catch (e) { /* shown until reload */ }
          location.replace(location.pathname);
        });
      }, fallback);
      function fallback() {
        var action = document.createElement("input");
        action.type = "hidden"; action.name = "action"; action.value = "add";
        form.appendChild(action);
        form.submit();
      }
    });
  }

  /* Renumber the items' field names to their order on the page, then save the form. */
  function saveOrder(form, list) {
    Array.prototype.forEach.call(list.children, function (li, pos) {
      Array.prototype.forEach.call(li.querySelectorAll("[data-field]"), function (el) {
        el.name = "item-" + pos + "-" + el.dataset.field;
      });
    });
    var save = form.querySelector('button[name="action"][value="save"]');
    if (form.requestSubmit) form.requestSubmit(save); else save.click();
  }

  function initSorting(form) {
    var list = form.querySelector("ol[data-sortable]");
    if (!list || list.children.length < 2 || !window.PointerEvent) return;
    var help = document.getElementById("drag-help");
    if (help) help.hidden = false;
    Array.prototype.forEach.call(list.querySelectorAll(".drag-handle"), function (handle) {
      handle.hidden = false;
      handle.addEventListener("pointerdown", function (ev) {
        if (ev.button !== 0) return;
        ev.preventDefault();
        var item = handle.closest("li");
        var start = Array.prototype.indexOf.call(list.children, item);
        item.classList.add("dragging");
        document.body.classList.add("sorting");
        function move(e) {
          // Near the window's edge the page scrolls, so an item can travel past what is in view.
          if (e.clientY < 48) window.scrollBy(0, -24);
          else if (e.clientY > window.innerHeight - 48) window.scrollBy(0, 24);
          var siblings = Array.prototype.filter.call(list.children, function (li) { return li !== item; });
          var before = null;
          for (var k = 0; k < siblings.length; k++) {
            var box = siblings[k].getBoundingClientRect();
            if (e.clientY < box.top + box.height / 2) { before = siblings[k]; break; }
          }
          if (before !== item.nextElementSibling) list.insertBefore(item, before);
        }
        function end() {
          document.removeEventListener("pointermove", move);
          document.removeEventListener("pointerup", end);
          document.removeEventListener("pointercancel", end);
          item.classList.remove("dragging");
          document.body.classList.remove("sorting");
          if (Array.prototype.indexOf.call(list.children, item) !== start) saveOrder(form, list);
        }
        // On the document, not the handle: moving the item in the page drops a pointer capture.
        document.addEventListener("pointermove", move);
        document.addEventListener("pointerup", end);
        document.addEventListener("pointercancel", end);
      });
    });
  }

  function initBlurbs(form) {
    if (!window.fetch || !window.FormData) return;
    form.addEventListener("click", function (ev) {
      var button = ev.target.closest('button[value^="blurb-"]');
      if (!button) return;
      ev.preventDefault();
      var item = button.closest("li");
      var box = button.closest(".regen");
      var status = box.querySelector(".regen-status");
      var name = box.querySelector("select").value;
      var data = new FormData();
      data.set("csrf_token", form.elements.csrf_token.value);
      data.set("url", item.querySelector('[data-field="url"]').value);
      data.set("summarizer", name);
      button.disabled = true;
      status.className = "regen-status";
      status.textContent = "Fetching the article and summarising with " + name + "…";
      fetch(box.dataset.blurbUrl, { method: "POST", body: data, credentials: "same-origin" })
        .then(function (r) { return r.json().catch(function () { return { error: "the server answered " + r.status }; }); })
        .catch(function () { return { error: "the server could not be reached" }; })
        .then(function (body) {
          button.disabled = false;
          if (body.summary) {
            item.querySelector('[data-field="summary"]').value = body.summary;
            status.textContent = "New summary from " + name + ": not saved yet.";
          } else {
            status.className = "regen-status error";
            status.textContent = "No new summary: " + (body.error || "unknown error");
          }
        });
    });
  }

  /* An article image that cannot be loaded is left out rather than shown broken. */
  document.addEventListener("error", function (ev) {
    var el = ev.target;
    if (el && el.tagName === "IMG" && el.classList.contains("thumb")) el.hidden = true;
  }, true);

  /* Up and Down reload the page on the moved item (#item-N): put focus back on the button that
     moved it (or its other one, once it reached an end) so the keyboard user can go on. */
  var MOVE = "newsletter-editor-move";
  document.addEventListener("submit", function (ev) {
    var b = ev.submitter;
    if (!b || !/^(up|down)-\d+$/.test(b.value || "")) return;
    try { sessionStorage.setItem(MOVE, b.value.split("-")[0]); } catch (e) { /* focus is a nicety */ }
  }, true);
  function refocusMoved() {
    var way = null;
    try { way = sessionStorage.getItem(MOVE); sessionStorage.removeItem(MOVE); } catch (e) { way = null; }
    var m = /^#item-(\d+)$/.exec(location.hash);
    if (!way || !m) return;
    var item = document.getElementById("item-" + m[1]);
    if (!item) return;
    var other = way === "up" ? "down" : "up";
    var button = item.querySelector('button[value="' + way + "-" + m[1] + '"]:not([disabled])') ||
                 item.querySelector('button[value="' + other + "-" + m[1] + '"]:not([disabled])');
    if (button) button.focus();
  }

  // After "load": going to the #item-N fragment focuses the page itself (HTML "scroll to the
  // fragment" falls back to the viewport), which would undo a focus given earlier.
  window.addEventListener("load", function () { setTimeout(refocusMoved, 0); });

  document.addEventListener("DOMContentLoaded", function () {
    // Images that failed before this script ran.
    Array.prototype.forEach.call(document.querySelectorAll("img.thumb"), function (img) {
      if (img.complete && img.naturalWidth === 0) img.hidden = true;
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-tabs]"), initTabs);
    var editor = document.getElementById("editor-form");
    if (editor) { initLinks(editor); initSorting(editor); initBlurbs(editor); }
  });

  document.addEventListener("htmx:configRequest", function (ev) {
    var field = document.querySelector('input[name="csrf_token"]');
    if (field && !ev.detail.parameters["csrf_token"]) {
      ev.detail.parameters.csrf_token = field.value;
    }
  });
})();
