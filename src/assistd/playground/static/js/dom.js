// DOM building without HTML strings: every text goes in as a text node, so user, model and tool
// text can never become markup. innerHTML is never used anywhere in the Playground.

const PROPS = new Set([
  "value", "checked", "disabled", "selected", "hidden", "readOnly", "multiple", "open",
  "textContent", "htmlFor", "tabIndex", "min", "max", "step", "placeholder", "type", "name",
  "required", "title", "download", "accept", "autocomplete", "rows",
]);

/** h("button", {class: "x", onclick: fn}, "text", child, [more]) -> HTMLElement */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "style") throw new Error("inline styles are not allowed (CSP): use a class");
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  add(el, children);
  return el;
}

/** Append children (nodes, strings, numbers, nested arrays; null/false skipped). */
export function add(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return add(el, ...children);
}

export function labelled(label, control, hint) {
  if (!control.id) control.id = uid("f");
  return h("div", { class: "field" },
    h("label", { htmlFor: control.id }, label),
    control,
    hint ? h("div", { class: "hint" }, hint) : null);
}

let counter = 0;
export function uid(prefix = "id") {
  counter += 1;
  return `${prefix}-${counter}`;
}

export function fmtTime(ts) {
  if (!ts) return "—";
  const d = new Date(ts * 1000);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined || Number.isNaN(s)) return "—";
  if (Number.isInteger(s) && s === 0) return "< 1 s"; // API timestamps are whole seconds
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(s < 10 ? 2 : 1)} s`;
}

export function pretty(value) {
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
}

/** A small transient message at the bottom of the screen (role=status for screen readers). */
export function toast(text, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const t = h("div", { class: ["toast", kind], role: kind === "error" ? "alert" : "status" }, text);
  box.append(t);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => t.remove(), kind === "error" ? 8000 : 3000);
}

/** Copy text; falls back to selecting a read-only field when the clipboard is not allowed. */
export async function copyText(text, anchor) {
  try {
    await navigator.clipboard.writeText(text);
    toast(`Copied ${text}`);
  } catch {
    const field = h("input", { class: "copy-fallback", value: text, readOnly: true, "aria-label": "Copy this" });
    (anchor || document.body).after(field);
    field.select();
    toast("Press Ctrl+C to copy");
    field.addEventListener("blur", () => field.remove());
    field.focus();
  }
}

export function badge(status) {
  return h("span", { class: ["badge", `st-${status}`] }, status);
}

export function button(text, onclick, opts = {}) {
  return h("button", { type: "button", class: opts.class || "btn", onclick, title: opts.title, disabled: opts.disabled,
    "aria-label": opts.label }, text);
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
