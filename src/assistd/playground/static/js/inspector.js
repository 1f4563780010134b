// The run inspector: a thread's runs; for one run its status, timings, usage, last_error and its
// steps (function arguments and outputs, code_interpreter input/logs/images, file_search results
// with file, score and chunk text via include[]).

import { api, fileBlobUrl } from "./api.js";
import { h, fill, badge, button, copyText, fmtTime, fmtSeconds, pretty, debounce } from "./dom.js";

export const INCLUDE = "step_details.tool_calls[*].file_search.results[*].content";
const ENDS = ["completed_at", "failed_at", "cancelled_at", "expired_at"];

function endOf(obj) {
  for (const k of ENDS) if (obj[k]) return obj[k];
  return null;
}

function kv(rows) {
  return h("dl", { class: "kv-list" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function usageText(u) {
  return u ? `${u.prompt_tokens} prompt + ${u.completion_tokens} completion = ${u.total_tokens} tokens` : "—";
}

function errorBox(err) {
  return err ? h("div", { class: "run-error", role: "note" }, h("strong", {}, err.code || "error"), ": ", err.message) : null;
}

function imageOutput(fileId) {
  const img = h("img", { class: "chat-image", alt: `Output image ${fileId}` });
  fileBlobUrl(fileId).then((u) => { img.src = u; }).catch(() => {});
  return h("figure", { class: "image-part" }, img, h("figcaption", { class: "hint" }, fileId));
}

function toolCallView(call) {
  if (call.type === "function") {
    const f = call.function || {};
    return h("div", { class: "call" },
      h("div", { class: "call-head" }, h("strong", {}, `function ${f.name}`), " ", h("code", { class: "hint" }, call.id)),
      h("div", { class: "label" }, "Arguments"), h("pre", { class: "code" }, pretty(f.arguments || "")),
      h("div", { class: "label" }, "Output"),
      f.output === null || f.output === undefined ? h("p", { class: "hint" }, "(waiting for output)")
        : h("pre", { class: "code" }, pretty(f.output)));
  }
  if (call.type === "code_interpreter") {
    const ci = call.code_interpreter || {};
    return h("div", { class: "call" },
      h("div", { class: "call-head" }, h("strong", {}, "code_interpreter"), " ", h("code", { class: "hint" }, call.id)),
      h("div", { class: "label" }, "Input"), h("pre", { class: "code" }, ci.input || ""),
      (ci.outputs || []).map((o) => (o.type === "logs"
        ? [h("div", { class: "label" }, "Logs"), h("pre", { class: "code logs" }, o.logs)]
        : o.type === "image" ? [h("div", { class: "label" }, "Image"), imageOutput(o.image.file_id)] : null)));
  }
  if (call.type === "file_search") {
    const fs = call.file_search || {};
    const results = fs.results || [];
    return h("div", { class: "call" },
      h("div", { class: "call-head" }, h("strong", {}, "file_search"), " ", h("code", { class: "hint" }, call.id)),
      fs.ranking_options ? h("p", { class: "hint" },
        `ranker ${fs.ranking_options.ranker}, score threshold ${fs.ranking_options.score_threshold}`) : null,
      results.length ? h("ol", { class: "results" }, results.map((r) => h("li", { class: "result" },
        h("div", { class: "result-head" }, h("strong", {}, r.file_name || r.file_id),
          h("span", { class: "score" }, `score ${Number(r.score).toFixed(3)}`)),
        (r.content || []).map((c) => h("blockquote", { class: "chunk" }, c.text)))))
        : h("p", { class: "hint" }, "No results"));
  }
  return h("pre", { class: "code" }, pretty(call));
}

function stepView(step) {
  const d = step.step_details || {};
  const started = step.created_at;
  const ended = endOf(step);
  return h("li", { class: "step" },
    h("div", { class: "step-head" }, h("strong", {}, d.type === "tool_calls" ? "Tool calls" : "Message creation"),
      badge(step.status), h("code", { class: "hint" }, step.id),
      h("span", { class: "hint" }, ended ? fmtSeconds(ended - started) : "")),
    errorBox(step.last_error),
    d.type === "message_creation" ? h("p", { class: "hint" }, `message ${d.message_creation.message_id}`) : null,
    d.type === "tool_calls" ? (d.tool_calls || []).map(toolCallView) : null,
    step.usage ? h("p", { class: "hint" }, usageText(step.usage)) : null);
}

export function inspector() {
  const runsBox = h("div", { class: "runs-list" });
  const detail = h("div", { class: "run-detail", "aria-live": "polite" });
  const el = h("section", { class: "pane inspector", "aria-label": "Run inspector" },
    h("div", { class: "pane-head" }, h("h2", {}, "Runs"), button("Refresh", () => refresh(), { class: "btn small" })),
    runsBox, detail);
  let threadId = null;
  let runId = null;
  let gen = 0;

  const renderRuns = (runs) => {
    fill(runsBox, runs.length ? h("ul", { class: "list compact", "aria-label": "Runs of this thread" }, runs.map((r) =>
      h("li", {}, h("button", { type: "button", class: ["item", r.id === runId ? "active" : null],
        "aria-pressed": String(r.id === runId), onclick: () => show(r.id) },
      h("span", { class: "item-title" }, r.id), badge(r.status),
      h("span", { class: "item-sub" }, fmtTime(r.created_at))))))
      : h("p", { class: "hint" }, threadId ? "No runs yet" : "Open a thread to see its runs"));
  };

  const renderRun = (run, steps) => {
    const end = endOf(run);
    fill(detail,
      h("div", { class: "run-head" }, h("h3", {}, "Run"), badge(run.status),
        button("Copy ID", (e) => copyText(run.id, e.currentTarget), { class: "btn small", label: "Copy run ID" })),
      kv([
        ["ID", h("code", {}, run.id)],
        ["Assistant", h("code", {}, run.assistant_id)],
        ["Model", run.model],
        ["Created", fmtTime(run.created_at)],
        ["Queued for", run.started_at ? fmtSeconds(run.started_at - run.created_at) : "—"],
        ["Started", fmtTime(run.started_at)],
        ["Ended", end ? fmtTime(end) : "—"],
        ["Duration", end && run.started_at ? fmtSeconds(end - run.started_at) : "—"],
        ["Usage", usageText(run.usage)],
        run.temperature !== null && run.temperature !== undefined ? ["Temperature", String(run.temperature)] : null,
        run.incomplete_details ? ["Incomplete", run.incomplete_details.reason] : null,
      ]),
      errorBox(run.last_error),
      run.required_action ? h("p", { class: "hint" },
        `Waiting for ${run.required_action.submit_tool_outputs.tool_calls.length} tool output(s)`) : null,
      h("details", {}, h("summary", {}, "Instructions and tools"),
        h("pre", { class: "code" }, run.instructions || ""),
        h("pre", { class: "code" }, pretty(run.tools))),
      h("h3", {}, "Steps"),
      steps.length ? h("ol", { class: "steps" }, steps.map(stepView)) : h("p", { class: "hint" }, "No steps yet"));
  };

  async function show(id) {
    runId = id;
    const mine = ++gen;
    if (!threadId || !runId) return;
    try {
      const [run, steps] = await Promise.all([
        api("GET", `/threads/${threadId}/runs/${runId}`),
        api("GET", `/threads/${threadId}/runs/${runId}/steps`, { query: { order: "asc", limit: 100, "include[]": INCLUDE } }),
      ]);
      if (mine !== gen) return;
      renderRun(run, steps.data);
      for (const b of runsBox.querySelectorAll("button.item")) {
        const on = b.querySelector(".item-title").textContent === runId;
        b.classList.toggle("active", on);
        b.setAttribute("aria-pressed", String(on));
      }
    } catch (e) {
      fill(detail, errorBox({ code: String(e.status || ""), message: e.message }));
    }
  }

  async function refresh() {
    if (!threadId) {
      renderRuns([]);
      fill(detail);
      return;
    }
    try {
      const runs = (await api("GET", `/threads/${threadId}/runs`, { query: { limit: 20 } })).data;
      if (!runId && runs.length) runId = runs[0].id;
      renderRuns(runs);
      if (runId) await show(runId);
    } catch (e) {
      fill(runsBox, h("p", { class: "form-error" }, e.message));
    }
  }

  const soon = debounce(refresh, 250);

  return {
    el,
    setThread(id) {
      threadId = id;
      runId = null;
      fill(detail);
      refresh();
    },
    show(id) {
      runId = id;
      refresh();
    },
    /** Called with each stream event: follow the streaming run. */
    onEvent(name, data) {
      if (data && data.object === "thread.run" && data.id !== runId) runId = data.id;
      if (name.startsWith("thread.run.") && !name.endsWith(".delta")) soon();
    },
    refresh,
  };
}

