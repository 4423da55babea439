/* Parley's moderation queue: row actions without a reload, WordPress's keyboard shortcuts, and
   the live feed of held comments. Every action is still a plain form POST with a CSRF token, so
   the screen works without this script. */
(function () {
  "use strict";

  var table = document.getElementById("the-comment-list-table");
  var tbody = document.getElementById("the-comment-list");
  if (!table || !tbody || !window.fetch) return;
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var view = table.getAttribute("data-view");
  var searching = !!table.getAttribute("data-search");
  var notices = document.getElementById("notices");
  var current = null;

  function fits(status) {
    return view === "all" ? (status === "pending" || status === "approved") : status === view;
  }

  function notice(text, kind) {
    if (!notices) return;
    var div = document.createElement("div");
    div.className = "notice notice-" + (kind || "success");
    var p = document.createElement("p");
    p.textContent = text;
    div.appendChild(p);
    notices.replaceChildren(div);
  }

  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = "<table><tbody>" + html.trim() + "</tbody></table>";
    var row = t.content.querySelector("tr");
    row.querySelectorAll('input[name="csrf_token"]').forEach(function (input) {
      if (!input.value) input.value = csrf;  // live rows are rendered once for every admin
    });
    row.querySelectorAll('input[name="next"]').forEach(function (input) {
      if (!input.value) input.value = location.pathname + location.search;
    });
    return row;
  }

  function setCounts(counts) {
    Object.keys(counts || {}).forEach(function (key) {
      document.querySelectorAll('[data-count="' + key + '"]').forEach(function (el) {
        el.textContent = counts[key];
      });
    });
  }

  function rows() { return Array.prototype.slice.call(tbody.querySelectorAll("tr.comment-row")); }

  function select(row) {
    if (current) current.classList.remove("kb-selected");
    current = row;
    if (row) {
      row.classList.add("kb-selected");
      row.focus({preventScroll: true});
      row.scrollIntoView({block: "nearest"});
    }
  }

  function place(data, highlight) {
    var existing = document.getElementById("comment-" + data.id);
    if (!data.html || !fits(data.status)) {
      if (existing) {
        if (existing === current) select(existing.nextElementSibling || existing.previousElementSibling);
        existing.remove();
      }
      return;
    }
    var row = fragment(data.html);
    if (existing) {
      if (existing === current) current = row;
      existing.replaceWith(row);
      if (row === current) row.classList.add("kb-selected");
    } else {
      var empty = tbody.querySelector("tr.no-items");
      if (empty) empty.remove();
      tbody.insertBefore(row, tbody.firstElementChild);
    }
    if (highlight) {
      row.classList.add("live-new");
      window.setTimeout(function () { row.classList.remove("live-new"); }, 4000);
    }
  }

  function send(form) {
    var body = new FormData(form);
    if (!body.get("csrf_token")) body.set("csrf_token", csrf);
    return fetch(form.action, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"Accept": "application/json", "X-CSRFToken": csrf}
    }).then(function (response) {
      if (response.redirected || !(response.headers.get("Content-Type") || "").includes("json")) {
        location.reload();  // signed out, or something the page cannot show in place
        return null;
      }
      return response.json().then(function (data) { data.ok = response.ok; return data; });
    }).then(function (data) {
      if (!data) return;
      setCounts(data.counts);
      notice(data.message, data.ok ? "success" : "error");
      if (!data.ok) return;
      if (form.id === "bulk-form") { location.reload(); return; }
      var row = form.closest("tr.comment-row");
      if (data.id) place(data, false);
      else if (row) row.remove();
    }).catch(function () {
      form.submit();  // the network hiccupped: fall back to the plain POST
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (!(tbody.contains(form) || form.id === "bulk-form")) return;
    event.preventDefault();
    send(form);
  });

  document.addEventListener("click", function (event) {
    var confirmer = event.target.closest("[data-confirm]");
    if (confirmer && !window.confirm(confirmer.getAttribute("data-confirm"))) event.preventDefault();
  });

  var selectAll = document.getElementById("cb-select-all");
  if (selectAll) selectAll.addEventListener("change", function () {
    rows().forEach(function (row) {
      var box = row.querySelector('input[type="checkbox"]');
      if (box) box.checked = selectAll.checked;
    });
  });

  /* --- keyboard shortcuts, as WordPress's Comments screen has them --- */
  var KEYS = {a: "approve", u: "unapprove", s: "spam", d: "trash", z: "restore"};
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    var key = event.key;
    var list = rows();
    if (key === "j" || key === "k") {
      var index = current ? list.indexOf(current) : -1;
      index = key === "j" ? Math.min(index + 1, list.length - 1) : Math.max(index - 1, 0);
      select(list[index] || null);
      event.preventDefault();
      return;
    }
    if (!current) return;
    var button = null;
    if (KEYS[key]) {
      button = current.querySelector('button[data-action="' + KEYS[key] + '"]');
      if (!button && key === "s") button = current.querySelector('button[data-action="unspam"]');
      if (button) { event.preventDefault(); button.closest("form").requestSubmit(); }
    } else if (key === "r" || key === "q") {
      var panel = current.querySelector(key === "r" ? 'details[data-panel="reply"]' : 'details[data-panel="quickedit"]');
      if (panel) {
        event.preventDefault();
        panel.open = true;
        var field = panel.querySelector("textarea, input:not([type=hidden])");
        if (field) field.focus();
      }
    } else if (key === "e") {
      var edit = current.querySelector('a[data-action="edit"]');
      if (edit) { event.preventDefault(); location.href = edit.href; }
    } else if (key === "x") {
      var box = current.querySelector('input[type="checkbox"]');
      if (box) { event.preventDefault(); box.checked = !box.checked; }
    }
  });

  /* --- live: new held comments arrive, counts move --- */
  var liveUrl = table.getAttribute("data-live");
  if (!liveUrl || !window.EventSource) return;
  var source = new EventSource(liveUrl + "?after=" + encodeURIComponent(table.getAttribute("data-max-id") || "0"));
  var liveNotice = document.getElementById("live-notice");
  source.addEventListener("counts", function (e) { setCounts(JSON.parse(e.data)); });
  source.addEventListener("comment.held", function (e) {
    var data = JSON.parse(e.data);
    if (searching || !fits(data.status)) return;
    if (!document.getElementById("comment-" + data.id)) place(data, true);
  });
  source.addEventListener("comment.changed", function (e) {
    var data = JSON.parse(e.data);
    if (document.getElementById("comment-" + data.id)) place(data, false);
  });
  source.addEventListener("expired", function (e) {
    source.close();
    if (liveNotice) {
      liveNotice.textContent = JSON.parse(e.data).message;
      liveNotice.hidden = false;
    }
  });
})();
