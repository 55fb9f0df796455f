// API access: JSON requests with the bearer token, and the token form shown once when the
// server answers 401. The token lives in sessionStorage (or localStorage when the user asks
// to be remembered) and is only ever sent in the Authorization header.

const KEY = 'faramesh.token';

let token = readStored();
let asking = null;
const listeners = new Set();

function readStored() {
  try { return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || null; } catch { return null; }
}

export function hasToken() { return Boolean(token); }

/** Called with `true`/`false` whenever a token is set or forgotten. */
export function onTokenChange(fn) { listeners.add(fn); }

export function authHeaders() {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export function forgetToken() {
  token = null;
  try { sessionStorage.removeItem(KEY); localStorage.removeItem(KEY); } catch { /* storage unavailable */ }
  listeners.forEach((fn) => fn(false));
}

function storeToken(value, remember) {
  token = value;
  try {
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
    (remember ? localStorage : sessionStorage).setItem(KEY, value);
  } catch { /* storage unavailable: the token lasts for this page only */ }
  listeners.forEach((fn) => fn(true));
}

/**
 * Asks the user for a token; concurrent callers share one form. Resolves once a token has
 * been entered. `detail` is the server's explanation of the refusal.
 */
export function requestToken(detail) {
  if (!asking) {
    asking = showTokenForm(detail).finally(() => { asking = null; });
  }
  return asking;
}

function showTokenForm(detail) {
  const dialog = document.getElementById('token-dialog');
  const form = dialog.querySelector('form');
  const input = dialog.querySelector('#token-input');
  const remember = dialog.querySelector('#token-remember');
  const message = dialog.querySelector('#token-message');
  message.textContent = token
    ? `The server refused the token${detail ? `: ${detail}` : ''}. Enter a valid one.`
    : 'This server requires an API token: one of its FARAMESH_TOKEN values, or a token made with "faramesh token create".';
  input.value = '';
  return new Promise((resolve) => {
    const onSubmit = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) { input.focus(); return; }
      form.removeEventListener('submit', onSubmit);
      dialog.removeEventListener('cancel', onCancel);
      storeToken(value, remember.checked);
      input.value = '';
      dialog.close();
      resolve();
    };
    // Nothing works without a token, so Escape does not dismiss the form.
    const onCancel = (event) => event.preventDefault();
    form.addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', onCancel);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

export class ApiError extends Error {
  constructor(status, detail, body) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.body = body;
  }
}

/** A JSON request to the API; asks for a token on 401 and retries. Throws ApiError. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  for (;;) {
    const headers = { Accept: 'application/json', ...authHeaders() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        signal,
      });
    } catch (err) {
      if (err?.name === 'AbortError') throw err;
      throw new ApiError(0, 'The server cannot be reached; is `faramesh serve` running?');
    }
    const data = await readJson(response);
    if (response.status === 401) {
      await requestToken(data?.detail);
      continue;
    }
    if (!response.ok) {
      const detail = typeof data?.detail === 'string' ? data.detail : `HTTP ${response.status}`;
      throw new ApiError(response.status, detail, data);
    }
    return data;
  }
}

/** A text answer of the API (the log's key and checkpoint); asks for a token on 401. */
export async function apiText(path) {
  for (;;) {
    let response;
    try {
      response = await fetch(path, { headers: { Accept: 'text/plain', ...authHeaders() }, cache: 'no-store' });
    } catch {
      throw new ApiError(0, 'The server cannot be reached; is `faramesh serve` running?');
    }
    const text = await response.text();
    if (response.status === 401) {
      let detail;
      try { detail = JSON.parse(text)?.detail; } catch { detail = undefined; }
      await requestToken(detail);
      continue;
    }
    if (!response.ok) {
      let detail = `HTTP ${response.status}`;
      try { detail = JSON.parse(text)?.detail ?? detail; } catch { /* not JSON */ }
      throw new ApiError(response.status, detail);
    }
    return text;
  }
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return { detail: text.slice(0, 500) }; }
}

/** Builds a query string from the non-empty entries of `params`. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== '' && v !== null && v !== undefined) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}
