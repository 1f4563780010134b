// A thread: its messages, the composer ("Add" / "Add and run", attachments), streamed runs with
// cancel and per-run overrides, and the form that answers function calls by hand.

import { api, stream, ApiError } from "./api.js";
import { h, fill, labelled, button, copyText, toast, pretty, badge, uid } from "./dom.js";
import { messageView } from "./messages.js";
import { INCLUDE } from "./inspector.js";
import { modelField, uploadWithProgress } from "./assistants.js";

const SEARCHABLE = /\.(c|cpp|cs|css|doc|docx|go|html|java|js|json|md|pdf|php|pptx|py|rb|sh|tex|ts|txt)$/i;
const ACTIVE = new Set(["queued", "in_progress", "cancelling", "requires_action"]);

function num(input) {
  return input.value === "" ? undefined : Number(input.value);
}

/** Per-run overrides: what the run's create body adds on top of assistant_id. */
function overridesPanel(getAssistant) {
  const model = modelField("", "Model");
  model.input.placeholder = "(the assistant's)";
  const instructions = h("textarea", { rows: 3, placeholder: "(the assistant's)" });
  const additional = h("textarea", { rows: 2, placeholder: "appended to the instructions for this run" });
  const overrideTools = h("input", { type: "checkbox" });
  const fs = h("input", { type: "checkbox", checked: true });
  const ci = h("input", { type: "checkbox", checked: true });
  const fns = h("input", { type: "checkbox", checked: true });
  const toolBoxes = h("div", { class: "inline-checks", hidden: true },
    ...[[fs, "file_search"], [ci, "code_interpreter"], [fns, "the assistant's functions"]].map(([c, l]) => {
      c.id = uid("o");
      return h("span", {}, c, h("label", { htmlFor: c.id }, l));
    }));
  overrideTools.id = uid("o");
  overrideTools.addEventListener("change", () => { toolBoxes.hidden = !overrideTools.checked; });
  const temperature = h("input", { type: "number", min: 0, max: 2, step: 0.1, placeholder: "(assistant's)", class: "num" });
  const maxCompletion = h("input", { type: "number", min: 256, placeholder: "none", class: "num" });
  const maxPrompt = h("input", { type: "number", min: 256, placeholder: "none", class: "num" });
  const truncation = h("select", {}, h("option", { value: "" }, "(default: auto)"), h("option", { value: "auto" }, "auto"),
    h("option", { value: "last_messages" }, "last_messages"));
  const lastN = h("input", { type: "number", min: 1, value: 10, class: "num", hidden: true, "aria-label": "Last messages" });
  truncation.addEventListener("change", () => { lastN.hidden = truncation.value !== "last_messages"; });
  const el = h("details", { class: "overrides" }, h("summary", {}, "Run settings (overrides for the next run)"),
    h("div", { class: "grid2" },
      model.field,
      labelled("Temperature", temperature),
      labelled("Max completion tokens", maxCompletion),
      labelled("Max prompt tokens", maxPrompt),
      h("div", { class: "field" }, h("label", {}, "Truncation"), h("div", { class: "row" }, truncation, lastN))),
    labelled("Instructions", instructions),
    labelled("Additional instructions", additional),
    h("div", { class: "field" }, h("span", {}, overrideTools, h("label", { htmlFor: overrideTools.id }, "Override tools")),
      toolBoxes));
  return {
    el,
    async get() {
      const o = {};
      if (model.input.value.trim()) o.model = model.input.value.trim();
      if (instructions.value.trim()) o.instructions = instructions.value;
      if (additional.value.trim()) o.additional_instructions = additional.value;
      if (num(temperature) !== undefined) o.temperature = num(temperature);
      if (num(maxCompletion) !== undefined) o.max_completion_tokens = num(maxCompletion);
      if (num(maxPrompt) !== undefined) o.max_prompt_tokens = num(maxPrompt);
      if (truncation.value === "auto") o.truncation_strategy = { type: "auto" };
      if (truncation.value === "last_messages") o.truncation_strategy = { type: "last_messages", last_messages: num(lastN) || 1 };
      if (overrideTools.checked) {
        const tools = [];
        if (fs.checked) tools.push({ type: "file_search" });
        if (ci.checked) tools.push({ type: "code_interpreter" });
        if (fns.checked) {
          const a = await getAssistant();
          for (const t of a?.tools || []) if (t.type === "function") tools.push(t);
        }
        o.tools = tools;
      }
      return o;
    },
  };
}

/**
 * opts: assistantId() -> id|null, getAssistant() -> Promise<assistant>, onThread(id) when a thread
 * is created or opened, inspector (from inspector.js), onRunEnded().
 */
export function threadView(opts) {
  let threadId = null;
  let run = null; // the run being streamed or waiting for tool outputs
  let streaming = false;
  let sending = false; // a message is being added (and its run started)
  let attachments = []; // {file, fs: checkbox, ci: checkbox}
  const live = new Map(); // message id -> {msg, el}

  const title = h("code", { class: "obj-id" }, "New thread");
  const copyBtn = button("Copy ID", (e) => copyText(threadId, e.currentTarget), { class: "btn small", label: "Copy thread ID" });
  copyBtn.hidden = true;
  const status = h("span", { class: "run-status", role: "status", "aria-live": "polite" });
  const list = h("div", { class: "messages", "aria-label": "Messages", "aria-live": "off" });
  const empty = h("p", { class: "empty-chat" }, "Type a message below, then \"Add and run\" to run the assistant.");
  const toolForm = h("section", { class: "tool-form", hidden: true, "aria-label": "Tool outputs" });

  const role = h("select", { "aria-label": "Role" }, h("option", { value: "user" }, "User"),
    h("option", { value: "assistant" }, "Assistant"));
  const input = h("textarea", { rows: 3, placeholder: "Enter your message… (Ctrl+Enter: Add and run)",
    "aria-label": "Message", class: "composer-input" });
  const attachList = h("ul", { class: "chips" });
  const uploads = h("div", { class: "uploads" });
  const fileInput = h("input", { type: "file", multiple: true, class: "visually-hidden", tabIndex: -1, "aria-hidden": "true" });
  const attachBtn = button("Attach files", () => fileInput.click(), { class: "btn" });
  const addBtn = button("Add", () => send(false), { class: "btn" });
  const runBtn = button("Add and run", () => send(true), { class: "btn primary" });
  const cancelBtn = button("Cancel run", () => cancel(), { class: "btn danger" });
  cancelBtn.hidden = true;
  const overrides = overridesPanel(opts.getAssistant);

  const renderAttachments = () => {
    fill(attachList, attachments.map((at, i) => h("li", { class: "chip" }, at.file.filename, " ",
      ...[[at.fs, "file_search"], [at.ci, "code_interpreter"]].map(([c, l]) => {
        c.id = c.id || uid("a");
        return h("span", { class: "tool-check" }, c, h("label", { htmlFor: c.id }, l));
      }),
      button("✕", () => { attachments.splice(i, 1); renderAttachments(); }, { class: "btn icon",
        label: `Remove ${at.file.filename}` }))));
  };
  fileInput.addEventListener("change", async () => {
    const files = [...fileInput.files];
    fileInput.value = "";
    for (const f of await uploadWithProgress(files, uploads)) {
      const search = SEARCHABLE.test(f.filename);
      attachments.push({ file: f, fs: h("input", { type: "checkbox", checked: search }),
        ci: h("input", { type: "checkbox", checked: !search }) });
    }
    renderAttachments();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      send(true);
    }
  });

  const setBusy = () => {
    const active = run && ACTIVE.has(run.status);
    for (const b of [addBtn, runBtn, attachBtn]) b.disabled = Boolean(active) || streaming || sending;
    cancelBtn.hidden = !active || run.status === "cancelling";
    fill(status, run ? ["Run ", badge(run.status)] : "");
  };

  const scrollDown = () => {
    const near = list.scrollHeight - list.scrollTop - list.clientHeight < 160;
    if (near || streaming) list.scrollTop = list.scrollHeight;
  };

  const showMessage = (m) => {
    empty.remove();
    const el = messageView(m, { onRun: (id) => opts.inspector.show(id) });
    list.append(el);
    return el;
  };

  async function load() {
    live.clear();
    fill(list);
    if (!threadId) {
      list.append(empty);
      return;
    }
    try {
      let after;
      for (;;) {
        const page = await api("GET", `/threads/${threadId}/messages`, { query: { order: "asc", limit: 100, after } });
        page.data.forEach(showMessage);
        if (!page.has_more) break;
        after = page.last_id;
      }
      if (!list.children.length) list.append(empty);
      list.scrollTop = list.scrollHeight;
      const runs = await api("GET", `/threads/${threadId}/runs`, { query: { limit: 1 } });
      run = runs.data[0] || null;
      setBusy();
      if (run && run.status === "requires_action") showToolForm(run);
      else toolForm.hidden = true;
      if (run && ACTIVE.has(run.status) && run.status !== "requires_action") watch(run.id, threadId);
    } catch (e) {
      list.append(h("p", { class: "form-error" }, e.message));
    }
  }

  /** A run this page is not streaming (started elsewhere, or before a reload): poll it to its end. */
  function watch(runId, tid) {
    setTimeout(async () => {
      if (tid !== threadId || streaming || !el.isConnected) return;
      try {
        const r = await api("GET", `/threads/${tid}/runs/${runId}`);
        if (tid !== threadId || streaming) return;
        run = r;
        setBusy();
        if (ACTIVE.has(r.status) && r.status !== "requires_action") watch(runId, tid);
        else {
          load();
          opts.inspector.refresh();
        }
      } catch {
        // gone (thread deleted): nothing to follow
      }
    }, 1000);
  }

  // --- streaming ---------------------------------------------------------------------------

  let renderQueued = new Set();
  let rafPending = false;
  const scheduleRender = (id) => {
    renderQueued.add(id);
    if (rafPending) return;
    rafPending = true;
    requestAnimationFrame(() => {
      rafPending = false;
      for (const mid of renderQueued) {
        const entry = live.get(mid);
        if (entry) entry.el.update(entry.msg);
      }
      renderQueued = new Set();
      scrollDown();
    });
  };

  const mergeDelta = (msg, delta) => {
    for (const part of delta.content || []) {
      const i = part.index ?? 0;
      const cur = msg.content[i];
      if (!cur) {
        const copy = { ...part };
        delete copy.index;
        if (copy.type === "text") copy.text = { value: part.text?.value || "", annotations: [...(part.text?.annotations || [])] };
        msg.content[i] = copy;
        continue;
      }
      if (part.type === "text" && part.text) {
        cur.text.value += part.text.value || "";
        for (const a of part.text.annotations || []) cur.text.annotations[a.index ?? cur.text.annotations.length] = a;
      } else {
        Object.assign(cur, part);
      }
    }
  };

  const onEvent = (name, data) => {
    opts.inspector.onEvent(name, data);
    if (name === "error") {
      const err = data && data.error ? data.error : data;
      toast(`Stream error: ${err?.message || pretty(data)}`, "error");
      return;
    }
    if (!data || typeof data !== "object") return;
    if (data.object === "thread.run") {
      run = data;
      setBusy();
      if (name === "thread.run.requires_action") showToolForm(data);
      return;
    }
    if (name === "thread.message.created") {
      const msg = { ...data, content: [...(data.content || [])] };
      live.set(data.id, { msg, el: showMessage(msg) });
      scrollDown();
    } else if (name === "thread.message.delta") {
      const entry = live.get(data.id);
      if (!entry) return;
      mergeDelta(entry.msg, data.delta);
      scheduleRender(data.id);
    } else if (name === "thread.message.completed" || name === "thread.message.incomplete") {
      const entry = live.get(data.id);
      if (entry) {
        entry.msg = data;
        scheduleRender(data.id);
      }
    }
  };

  async function streamRun(path, body, query) {
    streaming = true;
    setBusy();
    try {
      await stream(path, body, onEvent, { query });
    } catch (e) {
      toast(e instanceof ApiError ? `${e.param ? `${e.param}: ` : ""}${e.message}` : String(e), "error");
    } finally {
      streaming = false;
      setBusy();
      opts.inspector.refresh();
      opts.onRunEnded?.();
    }
  }

  async function startRun(settings) {
    const assistantId = opts.assistantId();
    if (!assistantId) {
      toast("Pick or create an assistant first", "error");
      return;
    }
    toolForm.hidden = true;
    const body = { assistant_id: assistantId, ...settings };
    await streamRun(`/threads/${threadId}/runs`, body, { "include[]": INCLUDE });
  }

  async function ensureThread() {
    if (threadId) return threadId;
    const t = await api("POST", "/threads", { body: {} });
    threadId = t.id;
    title.textContent = t.id;
    copyBtn.hidden = false;
    opts.inspector.setThread(t.id);
    opts.onThread?.(t.id, true);
    return threadId;
  }

  /** Add the composed message (and run): one at a time, so a quick second click cannot race it. */
  async function send(andRun) {
    if (sending) return;
    // what was composed when the button was pressed (the form may change while the requests run)
    const text = input.value;
    const atts = attachments;
    const asRole = role.value;
    if (andRun && !opts.assistantId()) {
      toast("Pick or create an assistant first", "error");
      return;
    }
    if (!text.trim() && !atts.length && (!andRun || !threadId)) {
      if (andRun) toast("Type a message first", "error");
      return;
    }
    sending = true;
    setBusy();
    let added = false;
    const composed = Boolean(text.trim() || atts.length);
    if (composed) {
      input.value = "";
      attachments = [];
      renderAttachments();
    }
    try {
      const settings = andRun ? await overrides.get() : null;
      if (composed) {
        await ensureThread();
        const body = { role: asRole, content: text.trim() ? text : "(attachments)" };
        if (atts.length) {
          body.attachments = atts.map((at) => ({ file_id: at.file.id, tools: [
            ...(at.fs.checked ? [{ type: "file_search" }] : []), ...(at.ci.checked ? [{ type: "code_interpreter" }] : [])] }));
        }
        const msg = await api("POST", `/threads/${threadId}/messages`, { body });
        added = true;
        showMessage(msg);
        list.scrollTop = list.scrollHeight;
      }
      if (andRun) await startRun(settings);
    } catch (e) {
      toast(e.message, "error");
      if (!added && !input.value) {
        // give the text back to fix and resend
        input.value = text;
        attachments = atts;
        renderAttachments();
      }
    } finally {
      sending = false;
      setBusy();
      if (toolForm.hidden) input.focus();
    }
  }

  async function cancel() {
    if (!run) return;
    try {
      const r = await api("POST", `/threads/${threadId}/runs/${run.id}/cancel`);
      // the stream may already have reported the run's end: never go back to "cancelling"
      if (run && run.id === r.id && ACTIVE.has(run.status)) run = r;
      toolForm.hidden = true;
      setBusy();
      if (!streaming) opts.inspector.refresh();
    } catch (e) {
      toast(e.message, "error");
    }
  }

  function showToolForm(r) {
    const calls = r.required_action?.submit_tool_outputs?.tool_calls || [];
    const outputs = calls.map(() => h("textarea", { rows: 3, class: "code", placeholder: "The function's result (any text, often JSON)" }));
    const submit = h("button", { type: "submit", class: "btn primary" }, "Submit outputs");
    const form = h("form", { class: "calls" },
      h("h3", {}, `The run needs ${calls.length === 1 ? "a function result" : `${calls.length} function results`}`),
      h("p", { class: "hint" }, "Run the function yourself and paste what it returns; the run then continues."),
      calls.map((c, i) => {
        outputs[i].id = uid("out");
        return h("fieldset", { class: "call" }, h("legend", {}, h("strong", {}, c.function.name), " ", h("code", { class: "hint" }, c.id)),
          h("div", { class: "label" }, "Arguments"), h("pre", { class: "code" }, pretty(c.function.arguments)),
          h("label", { htmlFor: outputs[i].id }, `Output of ${c.function.name}`), outputs[i]);
      }),
      h("div", { class: "actions" }, submit));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      submit.disabled = true;
      toolForm.hidden = true;
      const toolOutputs = calls.map((c, i) => ({ tool_call_id: c.id, output: outputs[i].value }));
      await streamRun(`/threads/${threadId}/runs/${r.id}/submit_tool_outputs`, { tool_outputs: toolOutputs },
        { "include[]": INCLUDE });
    });
    fill(toolForm, form);
    toolForm.hidden = false;
    outputs[0]?.focus();
  }

  const el = h("section", { class: "pane chat", "aria-label": "Thread" },
    h("div", { class: "pane-head" },
      h("div", { class: "thread-title" }, h("span", { class: "label" }, "Thread"), title, copyBtn),
      h("div", { class: "row" }, status, button("New thread", () => open(null, true), { class: "btn small" }))),
    list, toolForm,
    h("div", { class: "composer" },
      h("div", { class: "row" }, role, input),
      attachList, uploads,
      h("div", { class: "row actions" }, fileInput, attachBtn, h("span", { class: "grow" }), cancelBtn, addBtn, runBtn),
      overrides.el));

  function open(id, notify) {
    threadId = id;
    run = null;
    title.textContent = id || "New thread";
    copyBtn.hidden = !id;
    toolForm.hidden = true;
    setBusy();
    opts.inspector.setThread(id);
    if (notify) opts.onThread?.(id, false);
    return load();
  }

  return { el, open, get threadId() { return threadId; } };
}

export function threadMetadataText(t) {
  const md = Object.entries(t.metadata || {});
  return md.length ? md.map(([k, v]) => `${k}=${v}`).join(", ") : "";
}

