// The Playground's only way to the server: assistd's public /v1 API, on this page's own origin.
// Every request is recorded in the API log (method, path, status, duration, bodies).

const KEY_STORAGE = "assistd.playground.key";
const MAX_LOGGED_BODY = 200_000;

export const session = {
  key: localStorage.getItem(KEY_STORAGE) || "",
  mode: "unknown", // "local" | "keys"
  project: null,
};

export function setKey(key) {
  session.key = key.trim();
  if (session.key) localStorage.setItem(KEY_STORAGE, session.key);
  else localStorage.removeItem(KEY_STORAGE);
}

// --- API log ----------------------------------------------------------------------------------

export const apiLog = [];
const logListeners = new Set();
let logSeq = 0;

export function onLog(fn) {
  logListeners.add(fn);
  return () => logListeners.delete(fn);
}

function logStart(method, url, reqBody) {
  logSeq += 1;
  const entry = { id: logSeq, method, path: url, status: null, ms: null, started: Date.now(),
    reqBody: describeBody(reqBody), resBody: "", streaming: false };
  apiLog.push(entry);
  if (apiLog.length > 1000) apiLog.shift();
  emit(entry);
  return entry;
}

function logEnd(entry, status, resBody, t0) {
  entry.status = status;
  entry.ms = Math.round(performance.now() - t0);
  if (resBody !== undefined) entry.resBody = clip(resBody);
  emit(entry);
}

function emit(entry) {
  for (const fn of logListeners) fn(entry);
}

function clip(text) {
  return text.length > MAX_LOGGED_BODY ? `${text.slice(0, MAX_LOGGED_BODY)}\n… (${text.length} characters)` : text;
}

function describeBody(body) {
  if (body === undefined || body === null) return "";
  if (typeof body === "string") return clip(body);
  if (body instanceof FormData) {
    const parts = [];
    for (const [k, v] of body.entries()) {
      parts.push(v instanceof File ? `${k}: <file ${v.name}, ${v.size} bytes>` : `${k}: ${v}`);
    }
    return `multipart/form-data\n${parts.join("\n")}`;
  }
  return String(body);
}

// --- requests ---------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, error) {
    super((error && error.message) || `HTTP ${status}`);
    this.status = status;
    this.error = error || {};
    this.param = this.error.param || null;
  }
}

const authListeners = new Set();
export function onAuthRequired(fn) {
  authListeners.add(fn);
}

export function buildUrl(path, query) {
  let url = `/v1${path}`;
  if (query) {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      if (Array.isArray(v)) v.forEach((x) => qs.append(k, x));
      else qs.append(k, String(v));
    }
    const s = qs.toString();
    if (s) url += `?${s}`;
  }
  return url;
}

function headers(extra, json, noKey = false) {
  const hs = { "OpenAI-Beta": "assistants=v2", ...extra };
  if (json) hs["Content-Type"] = "application/json";
  if (session.key && !noKey) hs.Authorization = `Bearer ${session.key}`;
  return hs;
}

async function errorFrom(res, text, quiet = false) {
  let err = null;
  try {
    err = JSON.parse(text).error;
  } catch {
    err = { message: text || res.statusText };
  }
  if (res.status === 401 && !quiet) for (const fn of authListeners) fn(err);
  return new ApiError(res.status, err);
}

/** JSON request: api("POST", "/assistants", {body: {...}}) -> parsed JSON, or throws ApiError. */
export async function api(method, path, opts = {}) {
  const url = buildUrl(path, opts.query);
  const isForm = opts.body instanceof FormData;
  const body = opts.body === undefined ? undefined : isForm ? opts.body : JSON.stringify(opts.body);
  const entry = logStart(method, url, body);
  const t0 = performance.now();
  let res;
  try {
    res = await fetch(url, { method, headers: headers(opts.headers, body !== undefined && !isForm, opts.noKey), body,
      signal: opts.signal });
  } catch (e) {
    logEnd(entry, 0, String(e), t0);
    throw new ApiError(0, { message: `Network error: ${e.message}` });
  }
  const text = await res.text();
  logEnd(entry, res.status, text, t0);
  if (!res.ok) throw await errorFrom(res, text, opts.noKey);
  return text ? JSON.parse(text) : null;
}

/** Every page of a list endpoint (up to `max` items). */
export async function listAll(path, query = {}, max = 1000) {
  const out = [];
  let after;
  for (;;) {
    const page = await api("GET", path, { query: { limit: 100, ...query, after } });
    out.push(...page.data);
    if (!page.has_more || out.length >= max || !page.data.length) return out;
    after = page.last_id || page.data[page.data.length - 1].id;
  }
}

/**
 * POST with `stream: true` and read the SSE stream as it arrives (EventSource cannot POST):
 * onEvent(name, data) for each event; resolves when the stream ends.
 */
export async function stream(path, body, onEvent, opts = {}) {
  const url = buildUrl(path, opts.query);
  const payload = JSON.stringify({ ...body, stream: true });
  const entry = logStart("POST", url, payload);
  entry.streaming = true;
  const t0 = performance.now();
  let res;
  try {
    res = await fetch(url, { method: "POST", headers: headers({ Accept: "text/event-stream" }, true), body: payload,
      signal: opts.signal });
  } catch (e) {
    logEnd(entry, 0, String(e), t0);
    throw new ApiError(0, { message: `Network error: ${e.message}` });
  }
  if (!res.ok) {
    const text = await res.text();
    logEnd(entry, res.status, text, t0);
    throw await errorFrom(res, text);
  }
  entry.status = res.status;
  emit(entry);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let raw = "";
  const dispatch = (block) => {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue; // keep-alive comment
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (!data.length) return;
    const text = data.join("\n");
    let parsed = text;
    if (text !== "[DONE]") {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    onEvent(name, parsed);
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const chunk = decoder.decode(value, { stream: true });
      if (raw.length < MAX_LOGGED_BODY) raw += chunk;
      buffer += chunk.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        dispatch(block);
      }
    }
    if (buffer.trim()) dispatch(buffer);
  } finally {
    logEnd(entry, res.status, raw, t0);
  }
}

/** Multipart upload with progress (fetch cannot report upload progress; XMLHttpRequest can). */
export function upload(path, form, onProgress) {
  const url = buildUrl(path);
  const entry = logStart("POST", url, form);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    if (session.key) xhr.setRequestHeader("Authorization", `Bearer ${session.key}`);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener("load", async () => {
      logEnd(entry, xhr.status, xhr.responseText, t0);
      if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
      else reject(await errorFrom({ status: xhr.status, statusText: xhr.statusText }, xhr.responseText));
    });
    xhr.addEventListener("error", () => {
      logEnd(entry, 0, "network error", t0);
      reject(new ApiError(0, { message: "Network error during upload" }));
    });
    xhr.send(form);
  });
}

export function uploadFile(file, purpose, onProgress) {
  const form = new FormData();
  form.append("purpose", purpose);
  form.append("file", file, file.name);
  return upload("/files", form, onProgress);
}

// --- file contents as blob: URLs (images inline, downloads) -----------------------------------

const blobUrls = new Map();

export async function fileBlobUrl(fileId) {
  if (blobUrls.has(fileId)) return blobUrls.get(fileId);
  const promise = (async () => {
    const url = buildUrl(`/files/${encodeURIComponent(fileId)}/content`);
    const entry = logStart("GET", url);
    const t0 = performance.now();
    const res = await fetch(url, { headers: headers({}, false) });
    if (!res.ok) {
      const text = await res.text();
      logEnd(entry, res.status, text, t0);
      throw await errorFrom(res, text);
    }
    const blob = await res.blob();
    logEnd(entry, res.status, `<${blob.type || "binary"}, ${blob.size} bytes>`, t0);
    return URL.createObjectURL(blob);
  })();
  blobUrls.set(fileId, promise);
  promise.catch(() => blobUrls.delete(fileId));
  return promise;
}

const fileInfo = new Map();

/** A File object (name, bytes…), cached: citations and attachments name their files. */
export function fileMeta(fileId) {
  if (!fileInfo.has(fileId)) {
    const p = api("GET", `/files/${encodeURIComponent(fileId)}`);
    fileInfo.set(fileId, p);
    p.catch(() => fileInfo.delete(fileId));
  }
  return fileInfo.get(fileId);
}

export function rememberFile(file) {
  fileInfo.set(file.id, Promise.resolve(file));
}

export async function download(fileId, fallbackName) {
  const [url, meta] = await Promise.all([fileBlobUrl(fileId), fileMeta(fileId).catch(() => null)]);
  const a = document.createElement("a");
  a.href = url;
  a.download = (meta && meta.filename ? meta.filename.split("/").pop() : null) || fallbackName || fileId;
  document.body.append(a);
  a.click();
  a.remove();
}
