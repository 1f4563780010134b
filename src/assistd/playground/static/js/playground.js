// The Playground page, laid out like OpenAI's: the assistant's settings on the left, the thread in
// the middle, the run inspector ("Logs") on the right. Narrow screens show one pane at a time.

import { api, listAll } from "./api.js";
import { h, fill, button } from "./dom.js";
import { assistantEditor } from "./assistants.js";
import { threadView } from "./chat.js";
import { inspector } from "./inspector.js";

const PANES = [["assistant", "Assistant"], ["thread", "Thread"], ["runs", "Runs"]];

export function mountPlayground(main, params) {
  let assistantId = params.query.get("assistant") || localStorage.getItem("assistd.playground.assistant") || null;
  let assistant = null;
  const picker = h("select", { "aria-label": "Assistant" });
  const editorBox = h("div", { class: "editor-box" });
  const insp = inspector();
  const layout = h("div", { class: "playground show-thread" });

  // Loads finish late: once the user has gone to another page (the URL changes at once, the route
  // follows on the hashchange event), a late one must not rewrite the URL and pull them back here.
  let mounted = true;
  const setHash = () => {
    if (!mounted || (location.hash && !location.hash.startsWith("#/playground"))) return;
    const q = new URLSearchParams();
    if (assistantId) q.set("assistant", assistantId);
    if (chat.threadId) q.set("thread", chat.threadId);
    history.replaceState(null, "", `#/playground${q.toString() ? `?${q}` : ""}`);
  };

  const chat = threadView({
    assistantId: () => assistantId,
    getAssistant: async () => assistant || (assistantId ? api("GET", `/assistants/${assistantId}`) : null),
    inspector: insp,
    onThread: () => setHash(),
  });

  const showEditor = (a) => {
    fill(editorBox, assistantEditor(a, {
      onSaved: (saved) => {
        select(saved.id);
        loadPicker();
      },
      onDeleted: () => {
        select(null);
        loadPicker();
      },
    }));
  };

  async function select(id) {
    assistantId = id;
    assistant = null;
    if (id) localStorage.setItem("assistd.playground.assistant", id);
    else localStorage.removeItem("assistd.playground.assistant");
    picker.value = id || "";
    setHash();
    if (!id) {
      showEditor(null);
      return;
    }
    try {
      assistant = await api("GET", `/assistants/${id}`);
      showEditor(assistant);
    } catch {
      // deleted or not in this project: start a new one
      assistantId = null;
      localStorage.removeItem("assistd.playground.assistant");
      picker.value = "";
      showEditor(null);
    }
  }

  async function loadPicker() {
    try {
      const all = await listAll("/assistants", {}, 500);
      // a remembered assistant that was deleted since: start a new one
      if (assistantId && !params.query.get("assistant") && !all.some((a) => a.id === assistantId)) assistantId = null;
      fill(picker, h("option", { value: "" }, "+ New assistant"),
        all.map((a) => h("option", { value: a.id, selected: a.id === assistantId }, `${a.name || "(unnamed)"} · ${a.id}`)));
      picker.value = assistantId || "";
    } catch {
      // the key dialog handles 401s; the editor still works
    }
  }
  picker.addEventListener("change", () => select(picker.value || null));

  const tabs = h("div", { class: "pane-tabs", role: "tablist", "aria-label": "Panes" },
    PANES.map(([key, label]) => button(label, () => showPane(key), { class: "btn small tab" })));
  const showPane = (key) => {
    for (const [k] of PANES) layout.classList.toggle(`show-${k}`, k === key);
    tabs.querySelectorAll("button").forEach((b, i) => b.setAttribute("aria-selected", String(PANES[i][0] === key)));
  };
  for (const b of tabs.querySelectorAll("button")) b.setAttribute("role", "tab");
  showPane("thread");

  const logsToggle = button("Runs", () => layout.classList.toggle("hide-runs"), { class: "btn small runs-toggle",
    label: "Show or hide the run inspector" });
  fill(layout,
    h("section", { class: "pane assistant-pane", "aria-label": "Assistant settings" },
      h("div", { class: "pane-head" }, h("h1", {}, "Playground"), logsToggle),
      h("div", { class: "field" }, h("label", {}, "Assistant"), picker),
      editorBox),
    chat.el,
    insp.el);
  fill(main, tabs, layout);
  // the label above is for the picker
  picker.id = "assistant-picker";
  layout.querySelector(".assistant-pane .field label").htmlFor = "assistant-picker";

  const opened = chat.open(params.query.get("thread") || null, false);
  loadPicker().then(() => select(assistantId));
  opened.then(setHash);
  return () => { mounted = false; };
}
