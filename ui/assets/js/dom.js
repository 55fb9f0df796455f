// DOM helpers. Every value is inserted as text (textContent, text nodes, attributes set one
// by one): action data is attacker-controlled and must never be parsed as HTML.

/**
 * Creates an element. `props`: `class`, `text`, `on` ({event: handler}), `dataset`, `hidden`,
 * `disabled`, `value`, `checked`, anything else becomes an attribute (null/false skip it).
 * Children: nodes or strings (strings become text nodes); null/false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    switch (key) {
      case 'class': el.className = value; break;
      case 'text': el.textContent = value; break;
      case 'on': for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn); break;
      case 'dataset': Object.assign(el.dataset, value); break;
      case 'hidden': case 'disabled': case 'checked': el[key] = Boolean(value); break;
      case 'value': el.value = value; break;
      default: el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
}

/** Replaces all children of `el` (text or nodes). */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Pretty JSON for display; `null`/`undefined` become an em dash. */
export function pretty(value) {
  if (value === null || value === undefined) return '—';
  try { return JSON.stringify(value, null, 2); } catch { return String(value); }
}

/** One-line JSON preview cut to `max` characters. */
export function preview(value, max = 120) {
  let text;
  try { text = JSON.stringify(value ?? {}); } catch { text = String(value); }
  return text.length > max ? text.slice(0, max - 1) + '…' : text;
}

export function shortId(id) {
  return String(id ?? '').slice(0, 8);
}

/** "12s", "5m", "3h", "4d" since an ISO timestamp. */
export function age(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h`;
  return `${Math.floor(hrs / 24)}d`;
}

// One formatter for all timestamps: toLocaleString() builds a new one on every call.
const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function localTime(iso) {
  const t = Date.parse(iso);
  return Number.isNaN(t) ? String(iso ?? '—') : timeFormat.format(t);
}

/** A number as people write it: 3, 1200, 4200.5; no float noise (0.1 + 0.2 is 0.3). */
export function formatNumber(n) {
  if (n === null || n === undefined || n === '') return '—';
  const x = Number(n);
  if (!Number.isFinite(x)) return String(n);
  return String(Number.isInteger(x) ? x : Number(x.toPrecision(12)));
}

export const STATUSES = ['pending_approval', 'allowed', 'denied', 'approved', 'executing', 'succeeded', 'failed', 'timeout'];

/** Colour family of a status, used as a CSS class suffix. */
export function statusTone(status) {
  switch (status) {
    case 'pending_approval': return 'warn';
    case 'allowed': case 'approved': case 'succeeded': return 'ok';
    case 'denied': case 'failed': case 'timeout': return 'bad';
    case 'executing': return 'info';
    default: return 'neutral';
  }
}

export function riskTone(risk) {
  return { low: 'ok', medium: 'warn', high: 'bad' }[risk] ?? 'neutral';
}

export function statusLabel(status) {
  return status === 'pending_approval' ? 'pending approval' : String(status ?? 'unknown');
}

/** A colour-coded pill; the text carries the meaning, the colour only repeats it. */
export function pill(kind, value) {
  const tone = kind === 'risk' ? riskTone(value) : statusTone(value);
  const text = kind === 'risk' ? `${value ?? '—'}` : statusLabel(value);
  return h('span', { class: `pill tone-${tone}`, text });
}

/** The `context.mcp` of an action the MCP gateway submitted, if it is one. */
export function mcpOf(a) {
  const mcp = a?.context?.mcp;
  return mcp && typeof mcp === 'object' && !Array.isArray(mcp) ? mcp : null;
}

/** Whether the action is under an approval rule that counts approvals (`approvals_required`). */
export function hasQuorum(a) {
  return typeof a?.approvals_required === 'number';
}

/** "1 of 2 approvals" for an action under an approval rule; null for any other action. */
export function approvalsText(a) {
  if (!hasQuorum(a)) return null;
  const given = Array.isArray(a.approvals) ? a.approvals.length : 0;
  return `${given} of ${a.approvals_required} approval${a.approvals_required === 1 ? '' : 's'}`;
}

/** The state of a notification delivery as a pill: pending, delivered or failed. */
export function deliveryPill(state) {
  const tone = { pending: 'warn', delivered: 'ok', failed: 'bad' }[state] ?? 'neutral';
  return h('span', { class: `pill tone-${tone}`, text: String(state ?? 'unknown') });
}

/** What became of a delivery, in words: when it arrived, or its last error and next attempt. */
export function deliveryOutcome(n) {
  if (n.state === 'delivered') return n.delivered_at ? `Delivered ${localTime(n.delivered_at)}` : 'Delivered';
  const parts = [];
  if (n.last_error) parts.push(String(n.last_error));
  if (n.state === 'pending') parts.push(n.next_attempt_at ? `next attempt ${localTime(n.next_attempt_at)}` : 'not attempted yet');
  return parts.join('; ') || '—';
}
