// Entry point: routes (#/playground, #/assistants, #/threads, #/storage, #/log), the API key.

import { api, session, setKey, onAuthRequired, onLog, apiLog } from "./api.js";
import { h, fill, button } from "./dom.js";
import { mountPlayground } from "./playground.js";
import { mountAssistants } from "./assistants.js";
import { mountThreads } from "./threads.js";
import { mountStorage } from "./storage.js";
import { mountLog } from "./log.js";

const ROUTES = {
  playground: mountPlayground,
  assistants: mountAssistants,
  threads: mountThreads,
  storage: mountStorage,
  log: mountLog,
};

const main = document.getElementById("main");
let cleanup = null;

function parseHash() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(2) : "playground";
  const [path, qs] = raw.split("?");
  const [section, ...rest] = path.split("/");
  return { section: ROUTES[section] ? section : "playground", rest: rest.join("/") || null,
    query: new URLSearchParams(qs || "") };
}

export function nav(hash, replace = false) {
  if (replace) history.replaceState(null, "", hash);
  else history.pushState(null, "", hash);
  route();
}

function route() {
  if (location.hash && !location.hash.startsWith("#/")) return; // an in-page anchor
  const params = parseHash();
  if (typeof cleanup === "function") cleanup();
  cleanup = null;
  for (const a of document.querySelectorAll("#nav a")) {
    const on = a.dataset.section === params.section;
    a.classList.toggle("active", on);
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  cleanup = ROUTES[params.section](main, params, nav) || null;
}

// --- keys and project ---------------------------------------------------------------------------

const dialog = document.getElementById("key-dialog");
const keyInput = document.getElementById("key-input");
const keyError = document.getElementById("key-error");
let checking = null;

function renderAccount() {
  const box = document.getElementById("account");
  const p = session.project;
  fill(box,
    session.mode === "local"
      ? h("div", { class: "acct" }, h("span", { class: "dot ok" }), "Local mode · project ", h("strong", {}, p ? p.name : "default"))
      : p ? h("div", { class: "acct" }, h("span", { class: "dot ok" }), "Project ", h("strong", { class: "project-name" }, p.name),
        h("code", { class: "hint" }, p.id)) : h("div", { class: "acct" }, h("span", { class: "dot" }), "No API key"),
    session.mode === "keys" ? button(session.key ? "Change key" : "Enter key", () => askKey(), { class: "btn small" }) : null,
    session.mode === "keys" && session.key ? button("Forget key", () => { setKey(""); session.project = null; renderAccount(); askKey(); },
      { class: "btn small" }) : null);
}

function askKey(message) {
  keyError.textContent = message || "";
  keyInput.value = "";
  if (!dialog.open) dialog.showModal();
  keyInput.focus();
}

/** Local mode answers without a key; a keyed server answers 401 (and the page asks for one). */
async function checkAccess() {
  try {
    session.project = await api("GET", "/project");
  } catch (e) {
    if (e.status !== 401) throw e;
    session.mode = "keys";
    session.project = null;
    renderAccount();
    return false;
  }
  if (!session.key) session.mode = "local";
  else if (session.project.id !== "proj_default") session.mode = "keys";
  else {
    // a stored key and the default project: local mode, or a key of the project named "default"
    try {
      await api("GET", "/project", { noKey: true });
      session.mode = "local";
    } catch {
      session.mode = "keys";
    }
  }
  renderAccount();
  return true;
}

document.getElementById("key-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  setKey(keyInput.value);
  session.mode = "keys";
  if (await checkAccess()) {
    dialog.close();
    route();
  } else {
    setKey(""); // never keep a refused key
    renderAccount();
    keyError.textContent = "That key was refused. Check it and try again.";
  }
});

onAuthRequired(() => {
  if (checking) return;
  session.mode = "keys";
  askKey(session.key ? "The server refused the stored key." : "");
});

// --- API log counter -----------------------------------------------------------------------------

const counter = document.getElementById("log-count");
onLog(() => { counter.textContent = String(apiLog.length); });

window.addEventListener("hashchange", route);

async function start() {
  checking = checkAccess();
  let ok = false;
  try {
    ok = await checking;
  } catch (e) {
    fill(main, h("p", { class: "form-error" }, `The server could not be reached: ${e.message}`));
    return;
  } finally {
    checking = null;
  }
  if (!ok) {
    fill(main, h("p", { class: "loading" }, "Enter an API key to continue."));
    askKey();
    return;
  }
  route();
}

start();
