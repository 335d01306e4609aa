// The playground: shared messages/variables/tools, panes side by side, each streaming its own answer.
// Answers arrive as Server-Sent Events over a fetch POST (/playground/run) and are appended as they come.
(function () {
  "use strict";
  const dataEl = document.getElementById("playground-data");
  if (!dataEl) return;
  const data = JSON.parse(dataEl.textContent);
  const base = "/project/" + encodeURIComponent(data.projectId);
  const csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
  const VAR = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
  const state = {
    messages: [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: "" },
    ],
    variables: {},
    prompt: null,
  };
  const $ = (id) => document.getElementById(id);

  function renderMessages() {
    const box = $("pg-messages");
    box.replaceChildren();
    state.messages.forEach((m, i) => {
      const row = document.createElement("div");
      row.className = "row";
      row.dataset.testid = "message";
      const role = document.createElement("select");
      ["system", "user", "assistant"].forEach((r) => role.add(new Option(r, r, false, r === m.role)));
      role.addEventListener("change", () => { m.role = role.value; });
      const text = document.createElement("textarea");
      text.rows = 2;
      text.style.flex = "1";
      text.value = m.content;
      text.setAttribute("aria-label", m.role + " message");
      text.addEventListener("input", () => { m.content = text.value; renderVariables(); });
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.textContent = "×";
      remove.title = "Remove message";
      remove.addEventListener("click", () => { state.messages.splice(i, 1); renderMessages(); });
      row.append(role, text, remove);
      box.append(row);
    });
    renderVariables();
  }

  function renderVariables() {
    const names = new Set();
    state.messages.forEach((m) => { for (const match of m.content.matchAll(VAR)) names.add(match[1]); });
    const box = $("pg-variables");
    const present = Array.from(box.querySelectorAll("input")).map((el) => el.name);
    if (present.length === names.size && present.every((n) => names.has(n))) return;
    box.replaceChildren();
    names.forEach((name) => {
      const label = document.createElement("label");
      label.textContent = name + " ";
      const input = document.createElement("input");
      input.name = name;
      input.dataset.testid = "variable";
      input.value = state.variables[name] || "";
      input.addEventListener("input", () => { state.variables[name] = input.value; });
      label.append(input);
      box.append(label);
    });
  }

  function parseJsonField(id, what) {
    const text = $(id).value.trim();
    if (!text) return null;
    try { return JSON.parse(text); } catch (e) { throw new Error(what + " is not valid JSON: " + e.message); }
  }

  function paneParams(pane) {
    const params = {};
    pane.querySelectorAll(".pg-param").forEach((el) => {
      const v = el.value.trim();
      if (!v) return;
      const name = el.dataset.param;
      if (name === "stop") params.stop = v.split(",").map((s) => s.trim()).filter(Boolean);
      else params[name] = name === "max_tokens" ? parseInt(v, 10) : parseFloat(v);
    });
    return params;
  }

  function fillModels(pane) {
    const select = pane.querySelector(".pg-connection");
    const conn = data.connections.find((c) => c.id === select.value);
    const list = pane.querySelector(".pg-models");
    list.replaceChildren(...(conn ? conn.models : []).map((m) => new Option(m, m)));
    const model = pane.querySelector(".pg-model");
    if (conn && !conn.models.includes(model.value)) model.value = conn.models[0] || "";
  }

  let paneCount = 0;
  function addPane() {
    const node = $("pg-pane-template").content.firstElementChild.cloneNode(true);
    paneCount += 1;
    const listId = "pg-models-" + paneCount;
    node.querySelector(".pg-models").id = listId;
    node.querySelector(".pg-model").setAttribute("list", listId);
    const select = node.querySelector(".pg-connection");
    data.connections.forEach((c) => select.add(new Option(c.provider + " (" + c.adapter + ")", c.id)));
    select.addEventListener("change", () => fillModels(node));
    node.querySelector(".pg-run").addEventListener("click", () => runPane(node));
    node.querySelector(".pg-remove").addEventListener("click", () => node.remove());
    const save = node.querySelector(".pg-save");
    if (save) save.addEventListener("click", () => savePane(node));
    $("pg-panes").append(node);
    fillModels(node);
  }

  function setStatus(pane, text, isError) {
    const status = pane.querySelector(".pg-status");
    status.replaceChildren(text);
    status.classList.toggle("error", !!isError);
    return status;
  }

  async function runPane(pane) {
    const output = pane.querySelector(".pg-output");
    const runButton = pane.querySelector(".pg-run");
    output.textContent = "";
    let body;
    try {
      body = {
        connectionId: pane.querySelector(".pg-connection").value,
        model: pane.querySelector(".pg-model").value,
        messages: state.messages.filter((m) => m.content.trim() !== ""),
        variables: state.variables,
        params: paneParams(pane),
        tools: parseJsonField("pg-tools", "Tools"),
        jsonSchema: parseJsonField("pg-schema", "The JSON schema"),
      };
    } catch (e) { setStatus(pane, e.message, true); return; }
    if (state.prompt) { body.promptName = state.prompt.name; body.promptVersion = state.prompt.version; }
    pane.dataset.state = "running";
    runButton.disabled = true;
    setStatus(pane, "Running…");
    const toolCalls = {};
    try {
      const resp = await fetch(base + "/playground/run", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "text/event-stream" },
        body: JSON.stringify(body),
      });
      if (!resp.ok) {
        const err = await resp.json().catch(() => ({ message: resp.statusText }));
        throw new Error(err.message || "request failed (" + resp.status + ")");
      }
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const line = buffer.slice(0, cut).trim();
          buffer = buffer.slice(cut + 2);
          if (!line.startsWith("data: ")) continue;
          handleEvent(pane, output, toolCalls, JSON.parse(line.slice(6)));
        }
      }
    } catch (e) {
      setStatus(pane, e.message, true);
    } finally {
      pane.dataset.state = "done";
      runButton.disabled = !data.canRun;
    }
  }

  function handleEvent(pane, output, toolCalls, ev) {
    if (ev.type === "delta") {
      output.textContent += ev.text;
    } else if (ev.type === "tool_call") {
      const call = toolCalls[ev.index] || (toolCalls[ev.index] = { name: null, arguments: "" });
      call.name = call.name || ev.name;
      call.arguments += ev.arguments || "";
      output.textContent = Object.values(toolCalls).map((c) => "tool call " + c.name + "(" + c.arguments + ")").join("\n");
    } else if (ev.type === "done" || ev.type === "error") {
      const status = setStatus(pane, ev.type === "done"
        ? "Done" + (ev.usage ? " · " + ev.usage.input + " in / " + ev.usage.output + " out tokens" : "") + " · "
        : ev.message + " · ", ev.type === "error");
      const link = document.createElement("a");
      link.href = base + "/traces/" + encodeURIComponent(ev.traceId);
      link.textContent = "trace";
      link.dataset.testid = "trace-link";
      status.append(link);
    }
  }

  async function savePane(pane) {
    const result = pane.querySelector(".pg-save-result");
    const resp = await fetch(base + "/playground/save", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, Accept: "application/json" },
      body: JSON.stringify({
        name: pane.querySelector(".pg-save-name").value.trim(),
        messages: state.messages.filter((m) => m.content.trim() !== ""),
        model: pane.querySelector(".pg-model").value,
        params: paneParams(pane),
      }),
    });
    const answer = await resp.json().catch(() => ({ message: resp.statusText }));
    result.textContent = resp.ok ? "Saved as " + answer.name + " version " + answer.version : answer.message;
    result.classList.toggle("error", !resp.ok);
  }

  async function loadPrompt() {
    const name = $("pg-prompt-name").value.trim();
    const version = $("pg-prompt-version").value.trim();
    const status = $("pg-prompt-status");
    const q = "?name=" + encodeURIComponent(name) + "&version=" + encodeURIComponent(version);
    const resp = await fetch(base + "/playground/prompt" + q, { headers: { Accept: "application/json" } });
    const prompt = await resp.json().catch(() => ({ message: resp.statusText }));
    if (!resp.ok) { status.textContent = prompt.message; return; }
    state.messages = prompt.type === "chat"
      ? prompt.prompt.filter((m) => typeof m.content === "string").map((m) => ({ role: m.role, content: m.content }))
      : [{ role: "user", content: String(prompt.prompt) }];
    state.prompt = { name: prompt.name, version: prompt.version };
    status.textContent = "Loaded " + prompt.name + " version " + prompt.version;
    renderMessages();
  }

  $("pg-add-message").addEventListener("click", () => { state.messages.push({ role: "user", content: "" }); renderMessages(); });
  $("pg-add-pane").addEventListener("click", addPane);
  $("pg-run-all").addEventListener("click", () => document.querySelectorAll("#pg-panes [data-testid=pane]").forEach(runPane));
  $("pg-load-prompt").addEventListener("click", loadPrompt);
  renderMessages();
  addPane();
})();
