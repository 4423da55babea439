/* Parley's social sign-in, in the browser: keep the reader's draft across the round trip to the
   provider (and back from a failed one), Log Out as a POST, and Change revealing the icons.

   The draft lives in this tab's sessionStorage under "parley-draft:<slug>" (parley.js clears it
   once the comment is posted). It never goes to the server: a comment can be 64 KB, more than a
   cookie session holds, and what a reader has not posted yet is nobody else's business. */
(function () {
  "use strict";

  var section = document.getElementById("comments");
  var form = document.getElementById("commentform");
  if (!section || !form || !form.elements.comment) return;
  var key = "parley-draft:" + section.getAttribute("data-post-slug");
  var textarea = form.elements.comment;
  var parentField = form.elements.comment_parent;
  var identity = document.getElementById("comment-form-identity");

  function read() {
    try { return JSON.parse(window.sessionStorage.getItem(key) || "null"); } catch (e) { return null; }
  }

  function save() {
    var parent = parentField ? parentField.value : "0";
    try {
      if (!textarea.value && (!parent || parent === "0")) {
        window.sessionStorage.removeItem(key);
      } else {
        window.sessionStorage.setItem(key, JSON.stringify({comment: textarea.value, parent: parent}));
      }
    } catch (e) { /* storage disabled: the draft stays only in the box */ }
  }

  /* Put the form back under the comment being replied to, as the Reply link does. */
  function replyUnder(parentId) {
    var body = document.getElementById("comment-" + parentId);
    var respond = document.getElementById("respond");
    if (!body || !respond || !parentField) return;
    body.parentNode.insertBefore(respond, body.nextSibling);
    parentField.value = parentId;
    var cancel = document.getElementById("cancel-comment-reply-link");
    if (cancel) cancel.hidden = false;
  }

  function restore() {
    var draft = read();
    if (!draft) return false;
    if (!textarea.value && draft.comment) textarea.value = draft.comment;
    if (draft.parent && draft.parent !== "0" && parentField && parentField.value === "0") {
      replyUnder(draft.parent);
    }
    return true;
  }

  var restored = restore();
  var failed = identity && identity.getAttribute("data-signin-return");
  if (failed && window.history && window.history.replaceState) {
    // A failed sign-in shows the article at the callback's address: show the article's own.
    window.history.replaceState(null, "", failed + "#respond");
  }
  if (restored && (failed || window.location.hash === "#respond")) {
    textarea.focus();
    textarea.setSelectionRange(textarea.value.length, textarea.value.length);
  }

  textarea.addEventListener("input", save);

  if (identity) identity.addEventListener("click", function (event) {
    var link = event.target.closest("a");
    if (!link) return;
    if (link.classList.contains("nascar-signin-link") && link.id !== "postas-guest") {
      save();  // off to the provider: keep the draft for the way back
    } else if (link.id === "comment-form-logout") {
      event.preventDefault();
      save();
      logOut(link);
    } else if (link.id === "comment-form-change") {
      event.preventDefault();
      var nascar = document.getElementById("comment-form-nascar");
      if (!nascar) return;
      nascar.hidden = !nascar.hidden;
      link.setAttribute("aria-expanded", String(!nascar.hidden));
    }
  });

  /* Log Out is a POST with the CSRF token; a form of its own, as forms cannot nest. */
  function logOut(link) {
    var out = document.createElement("form");
    out.method = "post";
    out.action = link.getAttribute("href");
    out.hidden = true;
    var token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrf_token";
    token.value = link.getAttribute("data-csrf-token") || "";
    out.appendChild(token);
    document.body.appendChild(out);
    out.submit();
  }
})();
