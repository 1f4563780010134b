// One thread message as DOM: text as safe Markdown, file_citation annotations as numbered
// footnotes naming the file, file_path links that download, image_file parts inline.

import { download, fileBlobUrl, fileMeta } from "./api.js";
import { h, add, fill, fmtTime, toast } from "./dom.js";
import { renderMarkdown, REF_OPEN, REF_CLOSE } from "./markdown.js";

function cpIndex(str, unitIndex) {
  return Array.from(str.slice(0, unitIndex)).length;
}

/** Replace each annotated span with a placeholder; indices are code points (CONTRACT §8). */
export function withPlaceholders(value, annotations) {
  const cps = Array.from(value);
  const anns = (annotations || []).filter((x) => x && x.text).map((x) => ({ ...x }));
  // where the indices do not frame the annotation's text, find the text itself
  let searchFrom = 0;
  for (const x of anns.sort((p, q) => (p.start_index ?? 0) - (q.start_index ?? 0))) {
    const framed = Number.isInteger(x.start_index) && cps.slice(x.start_index, x.end_index).join("") === x.text;
    if (!framed) {
      const at = value.indexOf(x.text, searchFrom);
      if (at < 0) {
        x.skip = true;
        continue;
      }
      x.start_index = cpIndex(value, at);
      x.end_index = x.start_index + Array.from(x.text).length;
    }
    searchFrom = x.end_index;
  }
  let out = "";
  let pos = 0;
  const refs = [];
  for (const x of anns.filter((y) => !y.skip).sort((p, q) => p.start_index - q.start_index)) {
    if (x.start_index < pos) continue;
    out += cps.slice(pos, x.start_index).join("");
    out += `${REF_OPEN}${refs.length}${REF_CLOSE}`;
    refs.push(x);
    pos = x.end_index;
  }
  return { text: out + cps.slice(pos).join(""), refs };
}

function fileName(fileId, el) {
  el.textContent = fileId;
  fileMeta(fileId).then((f) => {
    el.textContent = f.filename;
    el.title = fileId;
  }).catch(() => {});
  return el;
}

function downloadButton(fileId, label, fallbackName) {
  const b = h("button", { type: "button", class: "linklike file-link", title: `Download ${fileId}`,
    dataset: { fileId } });
  add(b, label);
  b.addEventListener("click", () => download(fileId, fallbackName).catch((e) => toast(e.message, "error")));
  return b;
}

/** Text content (value + annotations) -> a fragment with footnotes appended. */
export function renderText(text, idPrefix) {
  const { text: marked, refs } = withPlaceholders(text.value || "", text.annotations);
  const footnotes = []; // distinct cited files, numbered in order of first citation
  const numberOf = (fileId) => {
    let k = footnotes.indexOf(fileId);
    if (k < 0) {
      footnotes.push(fileId);
      k = footnotes.length - 1;
    }
    return k + 1;
  };
  const frag = renderMarkdown(marked, {
    plain: (n) => refs[n]?.text || "",
    ref: (n, label) => {
      const x = refs[n];
      if (!x) return document.createTextNode("");
      if (x.type === "file_citation") {
        const k = numberOf(x.file_citation.file_id);
        const target = `${idPrefix}-fn-${k}`;
        return h("sup", { class: "cite" }, h("button", { type: "button", class: "linklike", "aria-label": `Source ${k}`,
          onclick: () => document.getElementById(target)?.scrollIntoView({ block: "nearest" }) }, `[${k}]`));
      }
      if (x.type === "file_path") {
        const base = x.text.split("/").pop();
        return downloadButton(x.file_path.file_id, label || [document.createTextNode(base)], base);
      }
      return document.createTextNode(x.text);
    },
  });
  if (footnotes.length) {
    frag.append(h("ol", { class: "footnotes", "aria-label": "Sources" }, footnotes.map((fileId, k) =>
      h("li", { id: `${idPrefix}-fn-${k + 1}` }, h("span", { class: "fn-num" }, `[${k + 1}]`), " ",
        downloadButton(fileId, [fileName(fileId, h("span"))])))));
  }
  return frag;
}

function imagePart(fileId) {
  const img = h("img", { class: "chat-image", alt: `Image ${fileId}`, dataset: { fileId } });
  const box = h("figure", { class: "image-part" }, img,
    h("figcaption", {}, downloadButton(fileId, ["Download image"], `${fileId}.png`)));
  fileBlobUrl(fileId).then((url) => { img.src = url; }).catch((e) => { img.alt = `Image ${fileId}: ${e.message}`; });
  return box;
}

export function renderContent(content, idPrefix) {
  return (content || []).map((part) => {
    if (part.type === "text") return h("div", { class: "md" }, renderText(part.text, idPrefix));
    if (part.type === "image_file") return imagePart(part.image_file.file_id);
    if (part.type === "image_url") {
      // never loaded (another origin): shown as its address
      return h("p", { class: "hint" }, "Image URL: ", h("code", {}, part.image_url.url));
    }
    if (part.type === "refusal") return h("p", { class: "refusal" }, part.refusal);
    return h("pre", { class: "code" }, JSON.stringify(part, null, 2));
  });
}

/** A message card. opts.onRun(runId) opens a run in the inspector. */
export function messageView(msg, opts = {}) {
  const head = h("header", { class: "msg-head" });
  const body = h("div", { class: "msg-body" });
  const el = h("article", { class: ["msg", `role-${msg.role}`], dataset: { messageId: msg.id },
    "aria-label": `${msg.role} message` }, head, body);
  const update = (m) => {
    fill(head,
      h("span", { class: "role" }, m.role === "user" ? "User" : m.role === "assistant" ? "Assistant" : m.role),
      h("span", { class: "hint" }, fmtTime(m.created_at)),
      m.run_id && opts.onRun
        ? h("button", { type: "button", class: "linklike hint", onclick: () => opts.onRun(m.run_id) }, m.run_id)
        : null,
      m.status && m.status !== "completed" ? h("span", { class: ["badge", `st-${m.status}`] }, m.status) : null);
    fill(body, renderContent(m.content, `m-${m.id}`));
    if (m.attachments?.length) {
      body.append(h("ul", { class: "chips attachments", "aria-label": "Attachments" }, m.attachments.map((at) =>
        h("li", { class: "chip" }, "Attached: ", fileName(at.file_id, h("span")), " ",
          h("span", { class: "hint" }, (at.tools || []).map((t) => t.type).join(", "))))));
    }
    if (m.incomplete_details) body.append(h("p", { class: "hint" }, `incomplete: ${m.incomplete_details.reason}`));
  };
  update(msg);
  el.update = update;
  return el;
}
