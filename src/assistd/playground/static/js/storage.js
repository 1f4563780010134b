// Storage: Files (upload with progress, list, download, delete) and vector stores (create, add
// files, each file's status and last_error, expiry, and a search box with filters).

import { api, listAll, download, fileMeta } from "./api.js";
import { h, fill, labelled, button, toast, fmtTime, fmtBytes, badge, copyText, debounce } from "./dom.js";
import { uploadWithProgress } from "./assistants.js";

const PURPOSES = ["assistants", "vision", "batch", "fine-tune", "user_data"];

function confirmButton(label, action) {
  let armed = null;
  const b = button(label, async () => {
    if (!armed) {
      b.textContent = "Confirm";
      armed = setTimeout(() => { b.textContent = label; armed = null; }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    b.textContent = label;
    await action();
  }, { class: "btn small danger" });
  return b;
}

function filesTab(box) {
  const purpose = h("select", {}, PURPOSES.map((p) => h("option", { value: p }, p)));
  const input = h("input", { type: "file", multiple: true });
  const progress = h("div", { class: "uploads" });
  const rows = h("tbody");
  const upload = h("button", { type: "submit", class: "btn primary" }, "Upload");
  const form = h("form", { class: "row wrap" }, labelled("Files to upload", input), labelled("Purpose", purpose), upload);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const files = [...input.files];
    if (!files.length) return toast("Choose files to upload", "error");
    upload.disabled = true;
    const done = await uploadWithProgress(files, progress, purpose.value);
    upload.disabled = false;
    input.value = "";
    if (done.length) toast(`Uploaded ${done.map((f) => f.filename).join(", ")}`);
    load();
  });
  async function load() {
    try {
      const files = await listAll("/files", { order: "desc" }, 2000);
      fill(rows, files.length ? files.map((f) => h("tr", {},
        h("td", {}, f.filename), h("td", {}, h("code", {}, f.id)), h("td", {}, f.purpose),
        h("td", { class: "num" }, fmtBytes(f.bytes)), h("td", {}, fmtTime(f.created_at)),
        h("td", {}, h("div", { class: "row" },
          button("Download", () => download(f.id, f.filename).catch((err) => toast(err.message, "error")),
            { class: "btn small", label: `Download ${f.filename}` }),
          confirmButton("Delete", async () => {
            try {
              await api("DELETE", `/files/${f.id}`);
              toast(`Deleted ${f.filename}`);
              load();
            } catch (err) {
              toast(err.message, "error");
            }
          })))))
        : h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No files")));
    } catch (e) {
      fill(rows, h("tr", {}, h("td", { colspan: 6, class: "form-error" }, e.message)));
    }
  }
  fill(box, form, progress,
    h("div", { class: "table-wrap" }, h("table", { class: "table", "aria-label": "Files" },
      h("thead", {}, h("tr", {}, ["Name", "ID", "Purpose", "Size", "Created", ""].map((t) => h("th", {}, t)))), rows)));
  load();
}

function storeDetail(box, storeId, onChanged) {
  let timer = null;
  let wasBusy = false;
  const files = h("tbody");
  const head = h("div");
  const progress = h("div", { class: "uploads" });
  const results = h("div", { class: "search-results", "aria-live": "polite" });

  async function load() {
    clearTimeout(timer);
    if (!box.isConnected) return;
    try {
      const [vs, vfiles] = await Promise.all([api("GET", `/vector_stores/${storeId}`),
        listAll(`/vector_stores/${storeId}/files`, {}, 1000)]);
      fill(head,
        h("div", { class: "pane-head" }, h("h2", {}, vs.name || "(unnamed)"), badge(vs.status),
          button("Copy ID", (e) => copyText(vs.id, e.currentTarget), { class: "btn small", label: "Copy vector store ID" }),
          confirmButton("Delete store", async () => {
            await api("DELETE", `/vector_stores/${vs.id}`);
            toast(`Deleted ${vs.id}`);
            onChanged(null);
          })),
        h("dl", { class: "kv-list" },
          h("dt", {}, "ID"), h("dd", {}, h("code", {}, vs.id)),
          h("dt", {}, "Files"), h("dd", {}, `${vs.file_counts.completed} completed, ${vs.file_counts.in_progress} in progress, ${vs.file_counts.failed} failed`),
          h("dt", {}, "Size"), h("dd", {}, fmtBytes(vs.usage_bytes)),
          h("dt", {}, "Expires"), h("dd", {}, vs.expires_after
            ? `${vs.expires_after.days} days after last activity (${vs.expires_at ? fmtTime(vs.expires_at) : "—"})` : "never"),
          h("dt", {}, "Last active"), h("dd", {}, fmtTime(vs.last_active_at))));
      fill(files, vfiles.length ? vfiles.map((f) => {
        const name = h("span", {}, f.id);
        fileMeta(f.id).then((m) => { name.textContent = m.filename; }).catch(() => {});
        return h("tr", { dataset: { fileId: f.id } }, h("td", {}, name), h("td", {}, h("code", {}, f.id)),
          h("td", {}, badge(f.status)),
          h("td", {}, f.last_error ? `${f.last_error.code}: ${f.last_error.message}` : ""),
          h("td", { class: "num" }, fmtBytes(f.usage_bytes)),
          h("td", {}, confirmButton("Remove", async () => {
            await api("DELETE", `/vector_stores/${storeId}/files/${f.id}`);
            load();
          })));
      }) : h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No files yet")));
      const busy = vfiles.some((f) => f.status === "in_progress");
      if (busy) timer = setTimeout(load, 700);
      else if (wasBusy) onChanged(storeId); // the list shows the store's new status
      wasBusy = busy;
    } catch (e) {
      fill(head, h("p", { class: "form-error" }, e.message));
    }
  }

  const existing = h("select", { "aria-label": "Existing file" });
  listAll("/files", { purpose: "assistants" }, 1000).then((fs) => fill(existing,
    h("option", { value: "" }, "— add an uploaded file —"),
    fs.map((f) => h("option", { value: f.id }, `${f.filename} · ${f.id}`)))).catch(() => {});
  const attach = async (ids) => {
    for (const id of ids) {
      try {
        await api("POST", `/vector_stores/${storeId}/files`, { body: { file_id: id } });
      } catch (e) {
        toast(e.message, "error");
      }
    }
    load();
    onChanged(storeId);
  };
  const picker = h("input", { type: "file", multiple: true, "aria-label": "Upload files to this vector store" });
  picker.addEventListener("change", async () => {
    const uploaded = await uploadWithProgress([...picker.files], progress);
    picker.value = "";
    await attach(uploaded.map((f) => f.id));
  });

  const query = h("input", { type: "search", placeholder: "Search this vector store…", "aria-label": "Search query" });
  const maxResults = h("input", { type: "number", min: 1, max: 50, value: 5, class: "num" });
  const threshold = h("input", { type: "number", min: 0, max: 1, step: 0.05, placeholder: "0", class: "num" });
  const filters = h("textarea", { rows: 2, class: "code", spellcheck: "false",
    placeholder: '{"type": "eq", "key": "lang", "value": "en"}' });
  const searchForm = h("form", { class: "search-form" },
    h("div", { class: "row wrap" }, query, h("button", { type: "submit", class: "btn primary" }, "Search")),
    h("div", { class: "row wrap" }, labelled("Max results", maxResults), labelled("Score threshold", threshold)),
    labelled("Filters (JSON, optional)", filters, "Comparison or compound filter on the files' attributes."));
  searchForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { query: query.value, max_num_results: Number(maxResults.value) || 5 };
    if (threshold.value) body.ranking_options = { score_threshold: Number(threshold.value) };
    if (filters.value.trim()) {
      try {
        body.filters = JSON.parse(filters.value);
      } catch (err) {
        fill(results, h("p", { class: "form-error" }, `Filters are not valid JSON: ${err.message}`));
        return;
      }
    }
    try {
      const page = await api("POST", `/vector_stores/${storeId}/search`, { body });
      fill(results, page.data.length ? h("ol", { class: "results" }, page.data.map((r) => h("li", { class: "result" },
        h("div", { class: "result-head" }, h("strong", {}, r.filename), h("span", { class: "score" }, `score ${r.score.toFixed(3)}`)),
        r.content.map((c) => h("blockquote", { class: "chunk" }, c.text)))))
        : h("p", { class: "hint" }, "No results"));
    } catch (err) {
      fill(results, h("p", { class: "form-error" }, `${err.param ? `${err.param}: ` : ""}${err.message}`));
    }
  });

  fill(box, head,
    h("h3", {}, "Files"),
    h("div", { class: "row wrap" }, existing, button("Add", () => existing.value && attach([existing.value]), { class: "btn small" }),
      h("span", { class: "hint" }, "or upload:"), picker),
    progress,
    h("div", { class: "table-wrap" }, h("table", { class: "table", "aria-label": "Vector store files" },
      h("thead", {}, h("tr", {}, ["Name", "ID", "Status", "Last error", "Size", ""].map((t) => h("th", {}, t)))), files)),
    h("h3", {}, "Search"), searchForm, results);
  load();
}

function storesTab(box, selectedId, nav) {
  const list = h("ul", { class: "list", "aria-label": "Vector stores" });
  const detail = h("section", { class: "pane detail", "aria-label": "Vector store" });
  const name = h("input", { type: "text", placeholder: "Name", "aria-label": "New vector store name" });
  const days = h("input", { type: "number", min: 1, max: 365, placeholder: "never", class: "num", "aria-label": "Expires after days" });
  const create = h("form", { class: "row wrap" }, name, h("label", { class: "hint" }, "expires after (days)", days),
    h("button", { type: "submit", class: "btn primary" }, "Create"));
  create.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { name: name.value || null };
    if (days.value) body.expires_after = { anchor: "last_active_at", days: Number(days.value) };
    try {
      const vs = await api("POST", "/vector_stores", { body });
      name.value = "";
      nav(`#/storage/vector_stores/${vs.id}`);
    } catch (err) {
      toast(err.message, "error");
    }
  });
  const loadList = debounce(async () => {
    try {
      const stores = await listAll("/vector_stores", {}, 1000);
      fill(list, stores.length ? stores.map((s) => h("li", {}, h("a", {
        href: `#/storage/vector_stores/${s.id}`, class: ["item", s.id === selectedId ? "active" : null] },
      h("span", { class: "item-title" }, s.name || "(unnamed)"),
      h("span", { class: "item-sub" }, `${s.id} · ${s.file_counts.total} files · ${s.status}`))))
        : h("li", { class: "empty" }, "No vector stores"));
    } catch (err) {
      fill(list, h("li", { class: "form-error" }, err.message));
    }
  }, 50);
  fill(box, h("div", { class: "two-col" },
    h("section", { class: "pane side-list" }, create, list), detail));
  loadList();
  if (selectedId) storeDetail(detail, selectedId, (id) => (id ? loadList() : nav("#/storage/vector_stores")));
  else fill(detail, h("p", { class: "hint" }, "Create a vector store or pick one to add files and search it."));
}

export function mountStorage(main, params, nav) {
  const [tab, id] = (params.rest || "files").split("/");
  const body = h("div");
  fill(main, h("section", { class: "page storage" },
    h("div", { class: "pane-head" }, h("h1", {}, "Storage"),
      h("nav", { class: "tabs", "aria-label": "Storage" },
        h("a", { href: "#/storage/files", class: ["tab", tab === "files" ? "active" : null],
          "aria-current": tab === "files" ? "page" : null }, "Files"),
        h("a", { href: "#/storage/vector_stores", class: ["tab", tab === "vector_stores" ? "active" : null],
          "aria-current": tab === "vector_stores" ? "page" : null }, "Vector stores"))),
    body));
  if (tab === "vector_stores") storesTab(body, id || null, nav);
  else filesTab(body);
}
