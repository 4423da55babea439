/* Parley's article page: the comment form over the JSON API, threaded replies, and live updates.
   The page works without this script; with it, nothing reloads. No inline script: CSP-friendly. */
(function () {
  "use strict";

  var section = document.getElementById("comments");
  if (!section || !window.fetch) return;
  var slug = section.getAttribute("data-post-slug");
  var form = document.getElementById("commentform");
  var respond = document.getElementById("respond");
  var list = document.getElementById("commentlist");
  var announcer = document.getElementById("live-announcer");
  var notice = document.getElementById("new-comments-notice");
  var countEl = section.querySelector(".comment-count");
  var csrfToken = null;
  var unseen = [];
  var mine = {};  // this browser's own comments it may still edit: id -> {content, editable_until}

  function $(id) { return document.getElementById(id); }

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function announce(text) {
    if (!announcer) return;
    announcer.textContent = "";
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  /* --- the reader's own state: CSRF token, saved details, held comments --- */
  function loadSession() {
    return fetch("/api/session?post=" + encodeURIComponent(slug), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (state) {
        csrfToken = state.csrf_token;
        if (form && state.commenter) {
          ["author", "email", "url"].forEach(function (name) {
            var input = form.elements[name];
            if (input && !input.value && state.commenter[name]) input.value = state.commenter[name];
          });
          var consent = $("wp-comment-cookies-consent");
          if (consent) consent.checked = true;
        }
        (state.held || []).forEach(function (c) { place(c, false); });
        (state.mine || []).forEach(function (m) {
          mine[m.id] = m;
          decorate($("li-comment-" + m.id));
          var left = Date.parse(m.editable_until) - Date.now();
          window.setTimeout(function () { delete mine[m.id]; undecorate(m.id); }, Math.max(left, 0));
        });
        return state;
      })
      .catch(function () { /* the form still works without it: the no-JS path */ });
  }

  /* --- placing a comment in its thread --- */
  function place(comment, highlight) {
    var existing = $("li-comment-" + comment.id);
    var node = fragment(comment.html);
    if (existing) {
      var children = existing.querySelector(":scope > ol.children");
      if (children) node.appendChild(children);
      existing.replaceWith(node);
    } else {
      var container = list;
      var parent = comment.parent_id ? $("li-comment-" + comment.parent_id) : null;
      // A new thread belongs on the newest page of comments; another page only counts it.
      if (!parent && section.getAttribute("data-latest-page") === "false") return null;
      if (parent) {
        var depth = parseInt(node.getAttribute("data-depth"), 10) || 1;
        while (parent && parseInt(parent.getAttribute("data-depth"), 10) >= depth) {
          parent = parent.parentElement.closest("li.comment");
        }
        if (parent) {
          container = parent.querySelector(":scope > ol.children");
          if (!container) {
            container = document.createElement("ol");
            container.className = "children";
            parent.appendChild(container);
          }
        }
      }
      var before = document.documentElement.scrollHeight;
      var above = false;
      if (container === list && section.getAttribute("data-order") === "desc") {
        list.insertBefore(node, list.firstElementChild);  // newest threads first
      } else {
        container.appendChild(node);
      }
      var rect = node.getBoundingClientRect();
      if (rect.bottom < 0) {  // landed above what the reader is reading: keep their place
        above = true;
        window.scrollBy(0, document.documentElement.scrollHeight - before);
      }
      if (highlight && above) noteUnseen(node);
    }
    decorate(node);
    if (highlight) {
      node.classList.add("is-new");
      window.setTimeout(function () { node.classList.remove("is-new"); }, 3000);
    }
    return node;
  }

  function noteUnseen(node) {
    if (!notice) return;
    unseen.push(node);
    var button = notice.querySelector("button");
    button.textContent = unseen.length === 1 ? "1 new comment" : unseen.length + " new comments";
    notice.hidden = false;
  }

  if (notice) {
    notice.querySelector("button").addEventListener("click", function () {
      var first = unseen[0];
      unseen = [];
      notice.hidden = true;
      if (first) first.scrollIntoView({behavior: "smooth", block: "center"});
    });
  }

  function setCount(count, text) {
    if (!countEl) return;
    countEl.textContent = text;
    countEl.setAttribute("data-count", count);
  }

  /* --- editing or taking back one's own comment, for a short while --- */
  function decorate(li) {
    if (!li) return;
    var id = li.getAttribute("data-comment-id");
    var reply = li.querySelector(":scope > .comment-body .reply");
    if (!mine[id] || !reply || reply.querySelector(".comment-edit-link")) return;
    var edit = document.createElement("button");
    edit.type = "button";
    edit.className = "comment-edit-link linklike";
    edit.textContent = "Edit";
    var del = document.createElement("button");
    del.type = "button";
    del.className = "comment-delete-link linklike";
    del.textContent = "Delete";
    reply.appendChild(document.createTextNode(" "));
    reply.appendChild(edit);
    reply.appendChild(document.createTextNode(" "));
    reply.appendChild(del);
    edit.addEventListener("click", function () { openEditor(li, id); });
    del.addEventListener("click", function () { takeBack(li, id); });
  }

  function undecorate(id) {
    var li = $("li-comment-" + id);
    if (!li) return;
    Array.prototype.forEach.call(li.querySelectorAll(":scope > .comment-body .comment-edit-link, " +
        ":scope > .comment-body .comment-delete-link, :scope > .comment-body .comment-editor"),
      function (el) { el.remove(); });
  }

  // Every change goes to the JSON API with this reader's CSRF token (from /api/session).
  function apiRequest(method, path, payload) {
    return fetch(path, {
      method: method,
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrfToken || ""},
      body: payload ? JSON.stringify(payload) : undefined
    });
  }

  function ownRequest(method, id, payload) {
    return apiRequest(method, "/api/comments/" + id, payload);
  }

  function openEditor(li, id) {
    var body = li.querySelector(":scope > .comment-body");
    if (body.querySelector(".comment-editor")) return;
    var editor = document.createElement("form");
    editor.className = "comment-editor";
    var area = document.createElement("textarea");
    area.value = mine[id].content;
    area.rows = 5;
    area.setAttribute("aria-label", "Edit your comment");
    var error = document.createElement("p");
    error.className = "field-error";
    error.hidden = true;
    var save = document.createElement("button");
    save.type = "submit";
    save.textContent = "Save";
    var cancelEdit = document.createElement("button");
    cancelEdit.type = "button";
    cancelEdit.className = "linklike";
    cancelEdit.textContent = "Cancel";
    editor.appendChild(area);
    editor.appendChild(error);
    editor.appendChild(save);
    editor.appendChild(document.createTextNode(" "));
    editor.appendChild(cancelEdit);
    body.querySelector(".comment-content").after(editor);
    area.focus();
    cancelEdit.addEventListener("click", function () { editor.remove(); });
    editor.addEventListener("submit", function (event) {
      event.preventDefault();
      ownRequest("PUT", id, {comment: area.value}).then(function (response) {
        return response.json().then(function (data) {
          if (!response.ok) {
            error.textContent = (data.fields && data.fields.comment) || data.message;
            error.hidden = false;
            return;
          }
          mine[id].content = area.value;
          place(data.comment, true);
          // An edit is screened again: one the rules hold goes back to moderation.
          announce(data.held ? "Your comment is awaiting moderation." : "Your comment was updated.");
        });
      });
    });
  }

  function takeBack(li, id) {
    if (!window.confirm("Delete your comment? This cannot be undone.")) return;
    ownRequest("DELETE", id).then(function (response) {
      if (response.status === 204) {
        delete mine[id];
        li.remove();
        announce("Your comment was deleted.");
      } else {
        response.json().then(function (data) { window.alert(data.message); });
      }
    });
  }

  /* --- threaded replies: the Reply link moves the form under the comment --- */
  var placeholder = document.createElement("div");
  placeholder.id = "respond-placeholder";
  placeholder.hidden = true;
  if (respond) respond.parentNode.insertBefore(placeholder, respond);
  var cancel = $("cancel-comment-reply-link");

  function replyTo(commentId) {
    var body = $("comment-" + commentId);
    if (!body || !respond) return;
    body.parentNode.insertBefore(respond, body.nextSibling);
    $("comment_parent").value = commentId;
    if (cancel) cancel.hidden = false;
    $("comment").focus();
  }

  function cancelReply() {
    if (!respond) return;
    placeholder.parentNode.insertBefore(respond, placeholder);
    $("comment_parent").value = "0";
    if (cancel) cancel.hidden = true;
  }

  section.addEventListener("click", function (event) {
    var link = event.target.closest(".comment-reply-link");
    if (link) {
      event.preventDefault();
      replyTo(link.getAttribute("data-commentid"));
    }
  });
  if (cancel) cancel.addEventListener("click", function (event) {
    event.preventDefault();
    cancelReply();
  });

  /* --- posting through the JSON API --- */
  function showErrors(body) {
    var fields = (body && body.fields) || {};
    ["comment", "author", "email", "url"].forEach(function (name) {
      var el = $(name + "-error");
      if (!el) return;
      el.textContent = fields[name] || "";
      el.hidden = !fields[name];
      el.parentNode.classList.toggle("has-error", !!fields[name]);
    });
    var general = $("form-error");
    var shown = Object.keys(fields).some(function (k) { return $(k + "-error"); });
    general.textContent = shown ? "" : (body && body.message) || "Your comment could not be posted.";
    general.hidden = shown;
    general.className = "form-error";
  }

  function send(payload, retried) {
    return apiRequest("POST", "/api/posts/" + encodeURIComponent(slug) + "/comments", payload)
    .then(function (response) {
      return response.json().then(function (body) {
        if (response.status === 400 && body.error === "csrf_failed" && !retried) {
          return loadSession().then(function () { return send(payload, true); });
        }
        return {status: response.status, body: body};
      });
    });
  }

  if (form) form.addEventListener("submit", function (event) {
    event.preventDefault();
    var submit = $("submit");
    var payload = {
      comment: form.elements.comment.value,
      comment_parent: parseInt(form.elements.comment_parent.value, 10) || 0,
      subscribe_comments: !!(form.elements.subscribe_comments && form.elements.subscribe_comments.checked),
      subscribe_blog: !!(form.elements.subscribe_blog && form.elements.subscribe_blog.checked),
      remember: !!($("wp-comment-cookies-consent") && $("wp-comment-cookies-consent").checked)
    };
    ["author", "email", "url", "ak_hp_textarea"].forEach(function (name) {  // ak_hp_textarea: the honeypot, "" for people
      if (form.elements[name]) payload[name] = form.elements[name].value;
    });
    submit.disabled = true;
    send(payload).then(function (result) {
      submit.disabled = false;
      if (result.status !== 201) { showErrors(result.body); return; }
      showErrors({fields: {}, message: ""});
      $("form-error").hidden = true;
      var created = result.body.comment;
      if (result.body.editable_until) {
        mine[created.id] = {content: payload.comment, editable_until: result.body.editable_until};
        window.setTimeout(function () { delete mine[created.id]; undecorate(created.id); },
                          Math.max(Date.parse(result.body.editable_until) - Date.now(), 0));
      }
      var node = place(created, true) || $("li-comment-" + created.id);
      if (!node) {  // a new thread on an older page of comments: it lives on the newest page
        var notice = $("form-error");
        notice.className = "form-notice";
        notice.textContent = "Your comment was posted; new comments are on the newest page.";
        notice.hidden = false;
        form.elements.comment.value = "";
        return;
      }
      form.elements.comment.value = "";
      try { window.sessionStorage.removeItem("parley-draft:" + slug); } catch (e) { /* private mode */ }
      cancelReply();
      node.scrollIntoView({block: "center"});
      announce(result.body.held ? "Your comment is awaiting moderation." : "Your comment was posted.");
    }).catch(function () {
      submit.disabled = false;
      showErrors({message: "The connection failed; your comment is still in the box. Try again."});
    });
  });

  /* --- live updates: Server-Sent Events, resumed from the last event id --- */
  var lastSeen = null;  // the last event id received: where a new stream starts
  function listen() {
    if (!window.EventSource) return;
    var last = lastSeen || section.getAttribute("data-last-event-id") || "0";
    var source = new EventSource("/api/posts/" + encodeURIComponent(slug) + "/live?last_event_id=" + last);
    ["comment.created", "comment.updated", "comment.removed", "likes", "count"].forEach(function (kind) {
      source.addEventListener(kind, function (event) { if (event.lastEventId) lastSeen = event.lastEventId; });
    });
    source.addEventListener("comment.created", function (event) {
      var comment = JSON.parse(event.data);
      var shown = $("li-comment-" + comment.id);
      // Already on the page (one's own, just posted): leave it, and any editor open in it, be.
      // A held one of one's own is replaced: it has just been approved.
      if (shown && !shown.classList.contains("comment-held")) return;
      place(comment, true);
      announce("New comment from " + comment.author);
    });
    source.addEventListener("comment.updated", function (event) {
      var comment = JSON.parse(event.data);
      if ($("li-comment-" + comment.id)) place(comment, true);
    });
    source.addEventListener("comment.removed", function (event) {
      var data = JSON.parse(event.data);
      var li = $("li-comment-" + data.id);
      // One's own comment, held again after an edit, stays in view, marked as held.
      if (!li || li.classList.contains("comment-held")) return;
      var children = li.querySelector(":scope > ol.children");
      if (children) {  // replies stay, as the server shows them once their parent is gone
        Array.prototype.slice.call(children.children).forEach(function (child) {
          li.parentNode.insertBefore(child, li);
        });
      }
      li.remove();
    });
    source.addEventListener("likes", function (event) {
      if (likeButton) showLikes(JSON.parse(event.data));
    });
    source.addEventListener("count", function (event) {
      var data = JSON.parse(event.data);
      setCount(data.count, data.text);
    });
    source.addEventListener("message", function () {});
    section.setAttribute("data-live", "connecting");
    source.addEventListener("open", function () { section.setAttribute("data-live", "open"); });
    source.addEventListener("error", function () {
      if (source.readyState !== EventSource.CLOSED) {  // the browser reconnects by itself
        section.setAttribute("data-live", "reconnecting");
        return;
      }
      // Refused (too many streams from this address: 429, or the server was down): the browser
      // gives up for good, so start a new stream a little later, from the last event seen.
      section.setAttribute("data-live", "retrying");
      window.setTimeout(listen, 30000);
    });
  }

  /* --- avatars: an offline or blocked Gravatar falls back to a local silhouette --- */
  var fallbackAvatar = "/static/img/avatar.svg";
  function useFallback(img) {
    if (img.getAttribute("src") !== fallbackAvatar) img.setAttribute("src", fallbackAvatar);
  }
  document.addEventListener("error", function (event) {
    if (event.target.classList && event.target.classList.contains("avatar")) useFallback(event.target);
  }, true);
  Array.prototype.forEach.call(document.querySelectorAll("img.avatar"), function (img) {
    if (img.complete && img.naturalWidth === 0) useFallback(img);
  });

  /* --- likes --- */
  var likeButton = $("like-button");
  var likeGuest = $("like-guest");
  var likeMessage = $("like-message");
  var signedIn = false;

  function showLikes(state) {
    $("like-count").textContent = state.text;
    var box = $("likers");
    box.textContent = "";
    (state.likers || []).forEach(function (liker) {
      var li = document.createElement("li");
      var img = document.createElement("img");
      img.className = "avatar liker";
      img.src = liker.avatar;
      img.alt = img.title = liker.name;
      img.width = img.height = 30;
      img.referrerPolicy = "no-referrer";
      li.appendChild(img);
      box.appendChild(li);
    });
    if (typeof state.liked === "boolean") {
      likeButton.setAttribute("aria-pressed", state.liked ? "true" : "false");
      likeButton.querySelector(".like-label").textContent = state.liked ? "Liked" : "Like";
    }
  }

  function likeRequest(method, payload) {
    return apiRequest(method, "/api/posts/" + encodeURIComponent(slug) + "/likes", payload)
      .then(function (r) { return r.json(); });
  }

  function say(text) {
    likeMessage.textContent = text;
    likeMessage.hidden = !text;
  }

  if (likeButton) {
    fetch("/api/posts/" + encodeURIComponent(slug) + "/likes", {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (state) { showLikes(state); likeButton.disabled = false; });
    likeButton.addEventListener("click", function () {
      if (likeButton.getAttribute("aria-pressed") === "true") {
        likeRequest("DELETE").then(showLikes);
      } else if (signedIn) {
        likeRequest("POST").then(showLikes);
      } else {
        likeGuest.hidden = false;
        $("like-email").focus();
      }
    });
    likeGuest.addEventListener("submit", function (event) {
      event.preventDefault();
      likeRequest("POST", {email: $("like-email").value}).then(function (state) {
        if (state.error) { say(state.message); return; }
        likeGuest.hidden = true;
        say(state.message);
      });
    });
  }

  loadSession().then(function (state) { signedIn = !!(state && state.user); });
  listen();
})();
