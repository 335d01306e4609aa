/* Prompt editor: text/chat switch, adding and removing messages, a live preview with {{variables}} and prompt
   references highlighted, the variable list, and JSON validation of the config. The server validates again;
   without JavaScript the form still works (the chat pane then has the rows the server rendered). */
(function () {
  "use strict";
  var VAR = /\{\{([^{}]*)\}\}/g;
  var TOKEN = /(\{\{[^{}]*\}\}|@@@langfusePrompt:.*?@@@)/;

  function esc(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function highlightInto(pre, text) {
    pre.textContent = "";
    text.split(TOKEN).forEach(function (part) {
      if (!part) return;
      if (/^\{\{[^{}]*\}\}$/.test(part) || part.indexOf("@@@langfusePrompt:") === 0) {
        var mark = document.createElement("mark");
        mark.className = part.charAt(0) === "{" ? "var" : "ref";
        mark.textContent = part;
        pre.appendChild(mark);
      } else {
        pre.appendChild(document.createTextNode(part));
      }
    });
  }

  function refresh(form) {
    var type = (form.querySelector("input[name=type]:checked") || form.querySelector("input[name=type]")).value;
    form.querySelectorAll("[data-pane]").forEach(function (pane) { pane.hidden = pane.dataset.pane !== type; });
    var names = {};
    var sources = type === "text" ? form.querySelectorAll("#pe-text") : form.querySelectorAll(".msg-edit");
    sources.forEach(function (el) {
      var text = el.tagName === "TEXTAREA" ? el.value : el.querySelector("textarea").value;
      var kind = el.tagName === "TEXTAREA" ? "message" : el.querySelector("select").value;
      if (kind === "placeholder") { if (text.trim()) names["[" + text.trim() + "]"] = 1; return; }
      var m;
      VAR.lastIndex = 0;
      while ((m = VAR.exec(text)) !== null) { if (m[1].trim()) names[m[1].trim()] = 1; }
    });
    var list = Object.keys(names);
    var out = form.querySelector("[data-variables]");
    if (out) out.innerHTML = list.length ? list.map(function (n) { return "<mark class=\"var\">" + esc(n) + "</mark>"; }).join(" ") : "–";
    form.querySelectorAll(".msg-edit").forEach(function (row) {
      var placeholder = row.querySelector("select").value === "placeholder";
      row.classList.toggle("is-placeholder", placeholder);
      var pre = row.querySelector(".msg-preview");
      if (!pre) return;
      var value = row.querySelector("textarea").value;
      if (placeholder || !/\{\{|@@@langfusePrompt:/.test(value)) pre.textContent = "";
      else highlightInto(pre, value);
    });
    var preview = form.querySelector("[data-preview-for=pe-text]");
    var text = form.querySelector("#pe-text");
    if (preview && text) highlightInto(preview, text.value);
  }

  function checkJson(area) {
    var status = area.parentNode.querySelector("[data-json-status]");
    var msg = "valid JSON object", ok = true;
    try {
      var v = JSON.parse(area.value || "{}");
      if (v === null || typeof v !== "object" || Array.isArray(v)) { ok = false; msg = "config must be a JSON object"; }
    } catch (err) { ok = false; msg = err.message; }
    area.classList.toggle("invalid", !ok);
    if (status) { status.textContent = msg; status.className = "json-status small " + (ok ? "ok" : "bad"); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector("form.prompt-editor");
    if (!form) return;
    form.addEventListener("input", function (e) {
      if (e.target.matches("[data-json]")) checkJson(e.target); else refresh(form);
    });
    form.addEventListener("change", function () { refresh(form); });
    form.addEventListener("click", function (e) {
      if (e.target.matches("[data-add-message]")) {
        var rows = form.querySelectorAll(".msg-edit");
        var last = rows[rows.length - 1];
        var copy = last.cloneNode(true);
        copy.querySelector("select").value = "message";
        copy.querySelector("input").value = rows.length === 1 ? "user" : "";
        copy.querySelector("textarea").value = "";
        copy.classList.remove("is-placeholder");
        var pre = copy.querySelector(".msg-preview");
        if (pre) pre.textContent = "";
        last.parentNode.appendChild(copy);
        copy.querySelector("textarea").focus();
      } else if (e.target.matches("[data-remove-message]")) {
        if (form.querySelectorAll(".msg-edit").length > 1) e.target.closest(".msg-edit").remove();
        refresh(form);
      }
    });
    form.querySelectorAll("[data-json]").forEach(checkJson);
    refresh(form);
  });
})();
