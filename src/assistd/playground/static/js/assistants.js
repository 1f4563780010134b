// Assistants: the editor (every field of an assistant) and the Assistants page (list, search).

import { api, ApiError, listAll, uploadFile, rememberFile, fileMeta } from "./api.js";
import { h, add, fill, labelled, button, copyText, toast, fmtTime, pretty, uid } from "./dom.js";
import { validateFunction, validateResponseSchema, FUNCTION_TEMPLATE } from "./schema.js";

let modelsPromise = null;

/** Model ids from GET /v1/models (empty when the server has none to offer; the field takes any text). */
export function modelIds() {
  if (!modelsPromise) {
    modelsPromise = api("GET", "/models")
      .then((r) => (r && Array.isArray(r.data) ? r.data.map((m) => m.id) : []))
      .catch(() => []);
  }
  return modelsPromise;
}

export function modelField(value, label = "Model") {
  const listId = uid("models");
  const input = h("input", { type: "text", value: value || "", list: listId, autocomplete: "off",
    placeholder: "pick or type a model name", name: "model" });
  const datalist = h("datalist", { id: listId });
  modelIds().then((ids) => add(datalist, ids.map((id) => h("option", { value: id }))));
  const field = labelled(label, input, "Models from GET /v1/models, or type any name the upstream knows.");
  field.append(datalist);
  return { field, input };
}

function slider(label, value, min, max, step) {
  const range = h("input", { type: "range", min, max, step, value: value ?? 1, "aria-label": `${label} slider`, tabIndex: -1 });
  const num = h("input", { type: "number", min, max, step, value: value ?? 1, class: "num" });
  range.addEventListener("input", () => { num.value = range.value; });
  num.addEventListener("input", () => { range.value = num.value; });
  const id = uid("f");
  num.id = id;
  return { field: h("div", { class: "field" }, h("label", { htmlFor: id }, label), h("div", { class: "slider" }, range, num)),
    get: () => (num.value === "" ? null : Number(num.value)) };
}

/** Key/value rows for metadata (16 pairs at most). */
export function metadataEditor(initial) {
  const rows = h("div", { class: "kv-rows" });
  const addRow = (k = "", v = "") => {
    const key = h("input", { type: "text", value: k, placeholder: "key", "aria-label": "Metadata key", maxlength: 64 });
    const val = h("input", { type: "text", value: v, placeholder: "value", "aria-label": "Metadata value", maxlength: 512 });
    const row = h("div", { class: "kv" }, key, val,
      button("✕", () => row.remove(), { class: "btn icon", label: "Remove metadata pair" }));
    rows.append(row);
  };
  for (const [k, v] of Object.entries(initial || {})) addRow(k, v);
  const el = h("fieldset", { class: "group" }, h("legend", {}, "Metadata"), rows,
    button("+ Add pair", () => (rows.children.length < 16 ? addRow() : toast("At most 16 metadata pairs", "error")),
      { class: "btn small" }));
  return {
    el,
    get() {
      const out = {};
      for (const row of rows.children) {
        const [k, v] = row.querySelectorAll("input");
        if (k.value.trim()) out[k.value.trim()] = v.value;
      }
      return out;
    },
  };
}

/** Chips naming files (by id, filled in with their names), each removable. */
function fileChips(ids, onRemove) {
  return h("ul", { class: "chips" }, ids.map((id) => {
    const name = h("span", {}, id);
    fileMeta(id).then((f) => { name.textContent = f.filename; name.title = id; }).catch(() => {});
    return h("li", { class: "chip" }, name, button("✕", () => onRemove(id), { class: "btn icon", label: `Remove ${id}` }));
  }));
}

function uploadButton(label, onFiles) {
  const input = h("input", { type: "file", multiple: true, class: "visually-hidden", tabIndex: -1,
    "aria-hidden": "true" });
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    if (files.length) onFiles(files);
  });
  return h("span", {}, input, button(label, () => input.click(), { class: "btn small" }));
}

/** Upload files with a progress bar per file; resolves to the File objects. */
export async function uploadWithProgress(files, into, purpose = "assistants") {
  const out = [];
  for (const file of files) {
    const bar = h("progress", { max: 1, value: 0, "aria-label": `Uploading ${file.name}` });
    const row = h("div", { class: "upload-row" }, h("span", {}, file.name), bar);
    into.append(row);
    try {
      const f = await uploadFile(file, purpose, (p) => { bar.value = p; });
      rememberFile(f);
      out.push(f);
    } catch (e) {
      toast(`Upload of ${file.name} failed: ${e.message}`, "error");
    } finally {
      row.remove();
    }
  }
  return out;
}

/**
 * The assistant editor. `assistant` is null for a new one. opts.onSaved(assistant) after
 * create/update/clone, opts.onDeleted(id) after delete.
 */
export function assistantEditor(assistant, opts = {}) {
  const a = assistant || { tools: [], tool_resources: {}, metadata: {}, temperature: 1, top_p: 1 };
  const tools = a.tools || [];
  const has = (type) => tools.some((t) => t.type === type);
  const fsTool = tools.find((t) => t.type === "file_search");
  const state = {
    vectorStoreIds: [...(a.tool_resources?.file_search?.vector_store_ids || [])],
    codeFileIds: [...(a.tool_resources?.code_interpreter?.file_ids || [])],
  };
  const error = h("div", { class: "form-error", role: "alert" });
  const root = h("form", { class: "editor", "aria-label": "Assistant editor", novalidate: true });

  const name = h("input", { type: "text", value: a.name || "", name: "name", maxlength: 256, placeholder: "Name" });
  const idRow = a.id
    ? h("div", { class: "id-row" }, h("code", { class: "obj-id" }, a.id),
      button("Copy ID", (e) => copyText(a.id, e.currentTarget), { class: "btn small", label: "Copy assistant ID" }))
    : h("div", { class: "hint" }, "Not saved yet");
  const description = h("input", { type: "text", value: a.description || "", name: "description", maxlength: 512 });
  const instructions = h("textarea", { rows: 6, value: a.instructions || "", name: "instructions",
    placeholder: "You are a helpful assistant." });
  const model = modelField(a.model);

  // file_search
  const fsToggle = h("input", { type: "checkbox", checked: has("file_search"), role: "switch" });
  const fsMax = h("input", { type: "number", min: 1, max: 50, value: fsTool?.file_search?.max_num_results ?? "",
    placeholder: "default", class: "num" });
  const fsBody = h("div", { class: "tool-body" });
  const vsSelect = h("select", { "aria-label": "Vector store" });
  const fsUploads = h("div", { class: "uploads" });
  const renderFs = async () => {
    fsBody.hidden = !fsToggle.checked;
    if (fsBody.hidden) return; // the stores are listed when the tool is on
    let stores = [];
    try {
      stores = await listAll("/vector_stores", {}, 300);
    } catch {
      stores = [];
    }
    fill(vsSelect, h("option", { value: "" }, "— none —"),
      stores.map((s) => h("option", { value: s.id, selected: state.vectorStoreIds.includes(s.id) },
        `${s.name || "(unnamed)"} · ${s.id} · ${s.file_counts.completed} files`)));
    for (const id of state.vectorStoreIds) {
      if (!stores.some((s) => s.id === id)) add(vsSelect, h("option", { value: id, selected: true }, id));
    }
  };
  vsSelect.addEventListener("change", () => {
    state.vectorStoreIds = vsSelect.value ? [vsSelect.value] : [];
  });
  const fsUpload = uploadButton("Upload files…", async (files) => {
    const uploaded = await uploadWithProgress(files, fsUploads);
    if (!uploaded.length) return;
    try {
      if (!state.vectorStoreIds.length) {
        const vs = await api("POST", "/vector_stores", {
          body: { name: `${name.value || "Assistant"} files`, file_ids: uploaded.map((f) => f.id) } });
        state.vectorStoreIds = [vs.id];
      } else {
        await api("POST", `/vector_stores/${state.vectorStoreIds[0]}/file_batches`, {
          body: { file_ids: uploaded.map((f) => f.id) } });
      }
    } catch (e) {
      toast(e.message, "error");
      return;
    }
    await renderFs();
    // as in OpenAI's Playground, the files are the assistant's at once (a new one gets them on create)
    if (a.id) await save("update");
    else toast(`Added ${uploaded.length} file(s): they are searched once you create the assistant`);
  });
  add(fsBody, labelled("Vector store", vsSelect, "Searched by file_search. Uploads go into it (a new store when none)."),
    fsUpload, fsUploads, labelled("Max results", fsMax));
  fsToggle.addEventListener("change", renderFs);

  // code_interpreter
  const ciToggle = h("input", { type: "checkbox", checked: has("code_interpreter"), role: "switch" });
  const ciBody = h("div", { class: "tool-body" });
  const ciList = h("div");
  const ciUploads = h("div", { class: "uploads" });
  const renderCi = () => {
    ciBody.hidden = !ciToggle.checked;
    fill(ciList, fileChips(state.codeFileIds, (id) => {
      state.codeFileIds = state.codeFileIds.filter((x) => x !== id);
      renderCi();
    }));
  };
  add(ciBody, ciList, uploadButton("Upload files…", async (files) => {
    const uploaded = await uploadWithProgress(files, ciUploads);
    state.codeFileIds.push(...uploaded.map((f) => f.id));
    renderCi();
  }), ciUploads);
  ciToggle.addEventListener("change", renderCi);

  // functions
  const fnList = h("div", { class: "functions" });
  const fnEditors = [];
  const addFunction = (def, open) => {
    const text = h("textarea", { rows: 10, class: "code", value: pretty(def), spellcheck: "false",
      "aria-label": "Function definition (JSON)" });
    const errs = h("ul", { class: "errors", "aria-live": "polite" });
    const title = h("strong", {}, def.name || "function");
    const subtitle = h("span", { class: "hint" }, def.description || "");
    const details = h("details", { class: "fn", open });
    const ed = { text, ok: true, value: def };
    const check = () => {
      const r = validateFunction(text.value);
      ed.ok = !r.errors.length;
      ed.value = r.value;
      fill(errs, r.errors.map((m) => h("li", {}, m)));
      text.setAttribute("aria-invalid", String(!ed.ok));
      if (r.value) {
        title.textContent = r.value.name;
        subtitle.textContent = r.value.description || "";
      }
    };
    text.addEventListener("input", check);
    add(details, h("summary", {}, title, " ", subtitle),
      text, errs,
      button("Remove function", () => {
        fnEditors.splice(fnEditors.indexOf(ed), 1);
        details.remove();
      }, { class: "btn small danger" }));
    fnEditors.push(ed);
    fnList.append(details);
    check();
    if (open) text.focus();
  };
  for (const t of tools) if (t.type === "function") addFunction(t.function, false);

  // response format, sampling
  const rf = a.response_format;
  const rfType = typeof rf === "object" && rf ? rf.type : "text";
  const rfSelect = h("select", { name: "response_format" },
    ["text", "json_object", "json_schema"].map((v) => h("option", { value: v, selected: v === rfType }, v)));
  const rfSchema = h("textarea", { rows: 8, class: "code", spellcheck: "false", "aria-label": "JSON schema",
    value: rfType === "json_schema" ? pretty(rf.json_schema) : pretty({ name: "answer", schema: { type: "object",
      properties: { answer: { type: "string" } }, required: ["answer"], additionalProperties: false }, strict: true }) });
  const rfErrs = h("ul", { class: "errors" });
  const rfBox = h("div", {}, rfSchema, rfErrs);
  const rfCheck = () => {
    rfBox.hidden = rfSelect.value !== "json_schema";
    const r = rfSelect.value === "json_schema" ? validateResponseSchema(rfSchema.value) : { errors: [] };
    fill(rfErrs, r.errors.map((m) => h("li", {}, m)));
    return r;
  };
  rfSelect.addEventListener("change", rfCheck);
  rfSchema.addEventListener("input", rfCheck);
  const temperature = slider("Temperature", a.temperature ?? 1, 0, 2, 0.01);
  const topP = slider("Top P", a.top_p ?? 1, 0, 1, 0.01);
  const metadata = metadataEditor(a.metadata);

  const toolRow = (toggle, label, body, extra) => {
    toggle.id = uid("t");
    return h("div", { class: "tool" }, h("div", { class: "tool-head" }, toggle, h("label", { htmlFor: toggle.id }, label),
      extra), body);
  };

  const body = () => {
    const errors = [];
    const fnDefs = [];
    fnEditors.forEach((ed, i) => {
      if (!ed.ok) errors.push(`Function ${i + 1} is not valid: fix it or remove it`);
      else fnDefs.push(ed.value);
    });
    const rfr = rfCheck();
    if (rfr.errors.length) errors.push("The response format's JSON schema is not valid");
    const toolList = [];
    if (fsToggle.checked) {
      const t = { type: "file_search" };
      if (fsMax.value) t.file_search = { max_num_results: Number(fsMax.value) };
      toolList.push(t);
    }
    if (ciToggle.checked) toolList.push({ type: "code_interpreter" });
    for (const f of fnDefs) toolList.push({ type: "function", function: f });
    let responseFormat = "auto";
    if (rfSelect.value === "json_object") responseFormat = { type: "json_object" };
    else if (rfSelect.value === "json_schema") responseFormat = { type: "json_schema", json_schema: rfr.value };
    else if (rfSelect.value === "text") responseFormat = { type: "text" };
    return {
      errors,
      payload: {
        name: name.value || null,
        description: description.value || null,
        instructions: instructions.value || null,
        model: model.input.value.trim(),
        tools: toolList,
        tool_resources: {
          file_search: { vector_store_ids: fsToggle.checked ? state.vectorStoreIds : [] },
          code_interpreter: { file_ids: ciToggle.checked ? state.codeFileIds : [] },
        },
        response_format: responseFormat,
        temperature: temperature.get(),
        top_p: topP.get(),
        metadata: metadata.get(),
      },
    };
  };

  const save = async (mode) => {
    const { errors, payload } = body();
    if (!payload.model) errors.push("Model: pick or type a model name");
    fill(error, errors.length ? h("ul", {}, errors.map((m) => h("li", {}, m))) : null);
    if (errors.length) return;
    if (mode === "clone") payload.name = `${payload.name || "Assistant"} (copy)`;
    if (mode === "create" && !payload.metadata) delete payload.metadata;
    try {
      const saved = mode === "update"
        ? await api("POST", `/assistants/${a.id}`, { body: payload })
        : await api("POST", "/assistants", { body: payload });
      toast(mode === "update" ? "Saved" : `Created ${saved.id}`);
      opts.onSaved?.(saved);
    } catch (e) {
      fill(error, e instanceof ApiError && e.param ? `${e.param}: ${e.message}` : e.message);
    }
  };

  let confirmDelete = null;
  const del = button("Delete", async () => {
    if (!confirmDelete) {
      del.textContent = "Confirm delete";
      confirmDelete = setTimeout(() => { del.textContent = "Delete"; confirmDelete = null; }, 4000);
      return;
    }
    clearTimeout(confirmDelete);
    try {
      await api("DELETE", `/assistants/${a.id}`);
      toast(`Deleted ${a.id}`);
      opts.onDeleted?.(a.id);
    } catch (e) {
      toast(e.message, "error");
    }
  }, { class: "btn danger" });

  root.addEventListener("input", () => fill(error)); // an edit answers the last complaint
  root.addEventListener("submit", (e) => {
    e.preventDefault();
    save(a.id ? "update" : "create");
  });

  add(root,
    labelled("Name", name), idRow,
    labelled("Description", description),
    labelled("Instructions", instructions),
    model.field,
    h("fieldset", { class: "group" }, h("legend", {}, "Tools"),
      toolRow(fsToggle, "File search", fsBody),
      toolRow(ciToggle, "Code interpreter", ciBody),
      h("div", { class: "tool" }, h("div", { class: "tool-head" }, h("span", { class: "label" }, "Functions"),
        button("+ Add function", () => addFunction(FUNCTION_TEMPLATE, true), { class: "btn small" })), fnList)),
    h("fieldset", { class: "group" }, h("legend", {}, "Model configuration"),
      labelled("Response format", rfSelect), rfBox, temperature.field, topP.field),
    metadata.el,
    error,
    h("div", { class: "actions sticky" },
      h("button", { type: "submit", class: "btn primary" }, a.id ? "Save" : "Create assistant"),
      a.id ? button("Clone", () => save("clone"), { class: "btn" }) : null,
      a.id ? del : null,
      a.id ? h("span", { class: "hint" }, `created ${fmtTime(a.created_at)}`) : null));
  renderFs();
  renderCi();
  rfCheck();
  return root;
}

// --- the Assistants page -----------------------------------------------------------------------

export function mountAssistants(main, params, nav) {
  const listBox = h("ul", { class: "list", "aria-label": "Assistants" });
  const search = h("input", { type: "search", placeholder: "Search by name, id, model…", "aria-label": "Search assistants" });
  const detail = h("section", { class: "pane detail", "aria-label": "Assistant details" });
  let all = [];
  const selected = params.rest || null;

  const renderList = () => {
    const q = search.value.trim().toLowerCase();
    const shown = all.filter((x) => !q || [x.name, x.id, x.model, x.description, x.instructions]
      .some((v) => v && v.toLowerCase().includes(q)));
    fill(listBox, shown.length ? shown.map((x) => h("li", {},
      h("a", { href: `#/assistants/${x.id}`, class: ["item", x.id === selected ? "active" : null],
        "aria-current": x.id === selected ? "page" : null },
      h("span", { class: "item-title" }, x.name || "(unnamed)"),
      h("span", { class: "item-sub" }, `${x.id} · ${x.model}`)))) : h("li", { class: "empty" }, all.length
      ? "No assistant matches" : "No assistants yet"));
  };
  search.addEventListener("input", renderList);

  const showDetail = async () => {
    if (!selected) {
      fill(detail, h("h2", {}, "New assistant"), assistantEditor(null, {
        onSaved: (s) => nav(`#/assistants/${s.id}`) }));
      return;
    }
    try {
      const a = await api("GET", `/assistants/${selected}`);
      fill(detail, h("div", { class: "pane-head" }, h("h2", {}, a.name || "(unnamed)"),
        h("a", { class: "btn", href: `#/playground?assistant=${a.id}` }, "Open in Playground")),
      assistantEditor(a, {
        onSaved: (s) => nav(`#/assistants/${s.id}`, true),
        onDeleted: () => nav("#/assistants", true),
      }));
    } catch (e) {
      fill(detail, h("p", { class: "form-error" }, e.message));
    }
  };

  fill(main, h("div", { class: "two-col" },
    h("section", { class: "pane side-list", "aria-label": "Assistant list" },
      h("div", { class: "pane-head" }, h("h1", {}, "Assistants"),
        h("a", { class: "btn primary", href: "#/assistants" }, "+ Create")),
      search, listBox),
    detail));
  listAll("/assistants", {}, 2000).then((xs) => {
    all = xs;
    renderList();
  }).catch((e) => fill(listBox, h("li", { class: "form-error" }, e.message)));
  showDetail();
}
