// The API log: every request this page made (method, path, status, duration), bodies on click.

import { apiLog, onLog } from "./api.js";
import { h, fill, button, pretty } from "./dom.js";

function readable(path) {
  try {
    return decodeURI(path);
  } catch {
    return path;
  }
}

function statusClass(s) {
  if (s === null) return "pending";
  if (s >= 200 && s < 300) return "ok";
  return "bad";
}

export function mountLog(main) {
  const rows = h("tbody");
  const detail = h("div", { class: "log-detail", "aria-live": "polite" });
  let selected = null;

  const row = (e) => h("tr", { class: e.id === selected ? "active" : null, dataset: { id: e.id } },
    h("td", {}, new Date(e.started).toLocaleTimeString()),
    h("td", {}, e.method),
    h("td", {}, h("button", { type: "button", class: "linklike path", onclick: () => show(e) }, readable(e.path))),
    h("td", {}, h("span", { class: ["status", statusClass(e.status)] }, e.status === null ? "…" : String(e.status))),
    h("td", { class: "num" }, e.ms === null ? "…" : `${e.ms} ms`));

  function show(e) {
    selected = e.id;
    fill(detail,
      h("h2", { class: "path" }, `${e.method} ${readable(e.path)}`),
      h("p", { class: "hint" }, `status ${e.status ?? "…"} · ${e.ms ?? "…"} ms${e.streaming ? " · server-sent events" : ""}`),
      h("h3", {}, "Request body"), h("pre", { class: "code" }, e.reqBody ? pretty(e.reqBody) : "(none)"),
      h("h3", {}, "Response body"), h("pre", { class: "code" }, e.resBody ? (e.streaming ? e.resBody : pretty(e.resBody)) : "(none)"));
    render();
  }

  function render() {
    fill(rows, [...apiLog].reverse().map(row));
  }

  const off = onLog(() => render());
  fill(main, h("div", { class: "two-col log" },
    h("section", { class: "pane" },
      h("div", { class: "pane-head" }, h("h1", {}, "API log"),
        button("Clear", () => { apiLog.length = 0; fill(detail); render(); }, { class: "btn small" })),
      h("p", { class: "hint" }, "Every request this page made to the API, newest first. Click a path for its bodies."),
      h("div", { class: "table-wrap" }, h("table", { class: "table", "aria-label": "Requests" },
        h("thead", {}, h("tr", {}, ["Time", "Method", "Path", "Status", "Duration"].map((t) => h("th", {}, t)))), rows))),
    h("section", { class: "pane detail", "aria-label": "Request details" }, detail)));
  render();
  return off;
}
