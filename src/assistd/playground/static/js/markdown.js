// A small Markdown renderer that builds DOM nodes (never HTML strings). Raw HTML in the source
// stays text; links keep only http(s) and mailto hrefs; images are never loaded (the page loads
// nothing from another origin), they become links. Supported: paragraphs, line breaks, headings,
// fenced and indented code, block quotes, ordered/unordered (nested) lists, tables, rules,
// **strong**, *emphasis*, ~~strike~~, `code`, [links](url), <autolinks> and bare URLs.
//
// Annotations: callers replace an annotated span with "\uE000<n>\uE001" and pass
// opts.ref(n, insideLinkText) -> Node, so citations and file links are rendered by the caller.

import { h } from "./dom.js";

export const REF_OPEN = "\uE000";
export const REF_CLOSE = "\uE001";
const REF_RE = /^\uE000(\d+)\uE001/;

const SAFE_SCHEME = /^(https?:\/\/|mailto:)/i;

/** The href to use for a Markdown link target, or null when it is not safe to follow. */
export function safeHref(url) {
  // eslint-disable-next-line no-control-regex
  const cleaned = String(url).replace(/[\u0000-\u0020\u007f-\u009f]/g, "");
  if (!SAFE_SCHEME.test(cleaned)) return null;
  try {
    const parsed = new URL(cleaned);
    return ["http:", "https:", "mailto:"].includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

export function renderMarkdown(text, opts = {}) {
  const frag = document.createDocumentFragment();
  const ctx = { ref: opts.ref || ((n) => document.createTextNode(`[${n}]`)), plain: opts.plain || ((n) => "") };
  frag.append(...blocks(String(text).replace(/\r\n?/g, "\n").split("\n"), ctx, 0));
  return frag;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}>\s?/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

function isBlockStart(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line);
}

function blocks(lines, ctx, depth) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (!line.trim()) {
      i += 1;
    } else if ((m = FENCE.exec(line))) {
      const fence = m[1];
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i += 1;
      out.push(codeBlock(body.join("\n"), m[2], ctx));
    } else if ((m = HEADING.exec(line))) {
      out.push(h(`h${Math.min(m[1].length + 2, 6)}`, { class: "md-h" }, inline(m[2], ctx)));
      i += 1;
    } else if (RULE.test(line)) {
      out.push(h("hr"));
      i += 1;
    } else if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && lines[i].trim() && (QUOTE.test(lines[i]) || !isBlockStart(lines[i]))) {
        body.push(lines[i].replace(QUOTE, ""));
        i += 1;
      }
      out.push(h("blockquote", {}, depth < 20 ? blocks(body, ctx, depth + 1) : body.join("\n")));
    } else if ((m = ITEM.exec(line))) {
      const [list, next] = listBlock(lines, i, ctx, depth);
      out.push(list);
      i = next;
    } else if (/^ {4,}\S/.test(line) && depth === 0 && !out.length) {
      const body = [];
      while (i < lines.length && (/^ {4,}/.test(lines[i]) || !lines[i].trim())) body.push(lines[i++].slice(4));
      out.push(codeBlock(body.join("\n").replace(/\n+$/, ""), "", ctx));
    } else if (line.includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) && lines[i + 1].includes("-")) {
      const rows = [line];
      i += 2;
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) rows.push(lines[i++]);
      out.push(table(rows, ctx));
    } else {
      const para = [];
      while (i < lines.length && lines[i].trim() && !(para.length && isBlockStart(lines[i]))) para.push(lines[i++]);
      const p = h("p");
      para.forEach((l, k) => {
        if (k) p.append(h("br"));
        p.append(...inline(l.trim(), ctx));
      });
      out.push(p);
    }
  }
  return out;
}

function codeBlock(code, lang, ctx) {
  const text = code.replace(/\uE000(\d+)\uE001/g, (_, n) => ctx.plain(Number(n)));
  return h("pre", { class: "md-code" }, h("code", { "data-lang": lang || null }, text));
}

function listBlock(lines, start, ctx, depth) {
  const first = ITEM.exec(lines[start]);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = h(ordered ? "ol" : "ul");
  if (ordered && Number.parseInt(first[2], 10) !== 1) list.setAttribute("start", String(Number.parseInt(first[2], 10)));
  let i = start;
  while (i < lines.length) {
    const m = ITEM.exec(lines[i]);
    if (!m || m[1].length !== indent || /\d/.test(m[2]) !== ordered) break;
    const body = [m[3]];
    const contentIndent = indent + m[2].length + 1;
    i += 1;
    while (i < lines.length) {
      const l = lines[i];
      if (!l.trim()) {
        // a blank line continues the item only when indented content follows
        if (i + 1 < lines.length && lines[i + 1].startsWith(" ".repeat(Math.max(contentIndent, indent + 2)))) {
          body.push("");
          i += 1;
          continue;
        }
        break;
      }
      const sub = ITEM.exec(l);
      if (sub && sub[1].length <= indent) break;
      if (!sub && !l.startsWith(" ") && isBlockStart(l)) break;
      body.push(l.replace(new RegExp(`^ {0,${contentIndent}}`), ""));
      i += 1;
    }
    const li = h("li");
    const inner = depth < 20 ? blocks(body, ctx, depth + 1) : [document.createTextNode(body.join("\n"))];
    // a tight item holds its text directly, not in a paragraph
    if (inner.length && inner[0].tagName === "P" && !body.includes("")) li.append(...inner[0].childNodes, ...inner.slice(1));
    else li.append(...inner);
    list.append(li);
  }
  return [list, i];
}

function splitRow(row) {
  let r = row.trim();
  if (r.startsWith("|")) r = r.slice(1);
  if (r.endsWith("|") && !r.endsWith("\\|")) r = r.slice(0, -1);
  return r.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
}

function table(rows, ctx) {
  const head = splitRow(rows[0]);
  return h("div", { class: "md-table" },
    h("table", {},
      h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, inline(c, ctx))))),
      h("tbody", {}, rows.slice(1).map((r) => h("tr", {}, splitRow(r).map((c) => h("td", {}, inline(c, ctx))))))));
}

// --- inline ---------------------------------------------------------------------------------------

function findClose(text, i) {
  // text[i] === "[": the index of its matching "]", or -1
  let level = 0;
  for (let k = i; k < text.length; k += 1) {
    if (text[k] === "\\") k += 1;
    else if (text[k] === "[") level += 1;
    else if (text[k] === "]") {
      level -= 1;
      if (level === 0) return k;
    }
  }
  return -1;
}

function parseLink(text, i) {
  const image = text[i] === "!";
  const open = image ? i + 1 : i;
  const close = findClose(text, open);
  if (close < 0 || text[close + 1] !== "(") return null;
  let k = close + 2;
  let level = 1;
  while (k < text.length && level) {
    if (text[k] === "(") level += 1;
    else if (text[k] === ")") level -= 1;
    if (level) k += 1;
  }
  if (level) return null;
  let target = text.slice(close + 2, k).trim();
  const titled = /^(\S+)\s+["'(].*["')]$/.exec(target);
  if (titled) target = titled[1];
  if (target.startsWith("<") && target.endsWith(">")) target = target.slice(1, -1);
  return { image, label: text.slice(open + 1, close), target, end: k + 1 };
}

const PUNCT = /[\\`*_{}[\]()#+\-.!~|<>]/;

export function inline(text, ctx, depth = 0) {
  const out = [];
  let buf = "";
  const flush = () => {
    if (buf) out.push(document.createTextNode(buf));
    buf = "";
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const rest = text.slice(i);
    let m;
    if (ch === "\\" && i + 1 < text.length && PUNCT.test(text[i + 1])) {
      buf += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === REF_OPEN && (m = REF_RE.exec(rest))) {
      flush();
      out.push(ctx.ref(Number(m[1]), null));
      i += m[0].length;
      continue;
    }
    if (ch === "`" && (m = /^(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/.exec(rest))) {
      flush();
      out.push(h("code", {}, m[2].replace(/\uE000(\d+)\uE001/g, (_, n) => ctx.plain(Number(n)))));
      i += m[0].length;
      continue;
    }
    if ((ch === "[" || (ch === "!" && text[i + 1] === "[")) && depth < 10) {
      const link = parseLink(text, i);
      if (link) {
        flush();
        out.push(linkNode(link, ctx, depth));
        i = link.end;
        continue;
      }
    }
    if (ch === "<" && (m = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i.exec(rest))) {
      flush();
      out.push(anchor(m[1], [document.createTextNode(m[1])]));
      i += m[0].length;
      continue;
    }
    if ((ch === "h" || ch === "H") && (i === 0 || /[\s(]/.test(text[i - 1])) &&
        (m = /^https?:\/\/[^\s<>\uE000]*[^\s<>\uE000.,;:!?"')\]]/i.exec(rest))) {
      flush();
      out.push(anchor(m[0], [document.createTextNode(m[0])]));
      i += m[0].length;
      continue;
    }
    if ((ch === "*" || ch === "_") && depth < 10) {
      const wordBefore = i > 0 && /[\p{L}\p{N}]/u.test(text[i - 1]);
      if (!(ch === "_" && wordBefore)) {
        const d = ch === "*" ? "\\*" : "_";
        const strong = new RegExp(`^${d}${d}(?=\\S)([\\s\\S]*?\\S)${d}${d}`).exec(rest);
        if (strong) {
          flush();
          out.push(h("strong", {}, inline(strong[1], ctx, depth + 1)));
          i += strong[0].length;
          continue;
        }
        const em = new RegExp(`^${d}(?=[^\\s${d}])([\\s\\S]*?[^\\s${d}])${d}(?!${d})`).exec(rest);
        if (em && !(ch === "_" && /[\p{L}\p{N}]/u.test(text[i + em[0].length] || ""))) {
          flush();
          out.push(h("em", {}, inline(em[1], ctx, depth + 1)));
          i += em[0].length;
          continue;
        }
      }
    }
    if (ch === "~" && (m = /^~~(?=\S)([\s\S]*?\S)~~/.exec(rest)) && depth < 10) {
      flush();
      out.push(h("del", {}, inline(m[1], ctx, depth + 1)));
      i += m[0].length;
      continue;
    }
    buf += ch;
    i += 1;
  }
  flush();
  return out;
}

function linkNode(link, ctx, depth) {
  const refTarget = REF_RE.exec(link.target);
  const label = link.label ? inline(link.label, ctx, depth + 1) : [document.createTextNode(link.target)];
  if (refTarget && refTarget[0].length === link.target.length) {
    // an annotated target, e.g. [Download](sandbox:/mnt/data/x.csv) with a file_path annotation
    return ctx.ref(Number(refTarget[1]), label);
  }
  if (link.image) {
    // never load an image from Markdown: show its alt text as a link (or text)
    const alt = link.label || link.target;
    const href = safeHref(link.target);
    return href ? anchor(href, [document.createTextNode(`[image: ${alt}]`)]) : document.createTextNode(`[image: ${alt}]`);
  }
  const href = safeHref(link.target);
  if (!href) {
    const span = h("span", { class: "md-badlink", title: "link not followed (unsafe or unsupported address)" });
    span.append(...label);
    return span;
  }
  return anchor(href, label);
}

function anchor(url, children) {
  const href = safeHref(url);
  if (!href) return h("span", {}, children);
  const a = h("a", { href, target: "_blank", rel: "noopener noreferrer nofollow" });
  a.append(...children);
  return a;
}
