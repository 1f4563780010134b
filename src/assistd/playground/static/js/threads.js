// The Threads page: GET /v1/threads (assistd's addition), newest first, filtered by metadata.

import { api } from "./api.js";
import { h, fill, button, fmtTime } from "./dom.js";
import { threadMetadataText } from "./chat.js";

export function mountThreads(main) {
  const filter = h("input", { type: "text", placeholder: "key=value, key2=value2", "aria-label": "Metadata filter" });
  const rows = h("tbody");
  const more = button("Load more", () => load(true), { class: "btn" });
  more.hidden = true;
  let after = null;

  const query = () => {
    const q = { limit: 50, order: "desc" };
    for (const pair of filter.value.split(",")) {
      const [k, ...v] = pair.split("=");
      if (k && k.trim()) q[`metadata[${k.trim()}]`] = v.join("=").trim();
    }
    return q;
  };

  async function load(next) {
    if (!next) {
      after = null;
      fill(rows);
    }
    try {
      const page = await api("GET", "/threads", { query: { ...query(), after: next ? after : undefined } });
      for (const t of page.data) {
        rows.append(h("tr", {},
          h("td", {}, h("a", { href: `#/playground?thread=${t.id}` }, h("code", {}, t.id))),
          h("td", {}, fmtTime(t.created_at)),
          h("td", {}, threadMetadataText(t))));
      }
      if (!rows.children.length) rows.append(h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No threads")));
      after = page.last_id;
      more.hidden = !page.has_more;
    } catch (e) {
      rows.append(h("tr", {}, h("td", { colspan: 3, class: "form-error" }, e.message)));
    }
  }

  const form = h("form", { class: "row filter" }, filter, h("button", { type: "submit", class: "btn" }, "Filter"),
    h("a", { class: "btn primary", href: "#/playground?thread=" }, "+ New thread"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    load(false);
  });
  fill(main, h("section", { class: "pane page" },
    h("div", { class: "pane-head" }, h("h1", {}, "Threads")),
    h("p", { class: "hint" }, "GET /v1/threads lists this project's threads, newest first; filter by metadata."),
    form,
    h("div", { class: "table-wrap" }, h("table", { class: "table", "aria-label": "Threads" },
      h("thead", {}, h("tr", {}, h("th", {}, "Thread"), h("th", {}, "Created"), h("th", {}, "Metadata"))), rows)),
    more));
  load(false);
}
