// The actions the page knows about, the set of pending approvals (for the title counter),
// and the approve/deny call shared by the table and the drawer.

import { api, ApiError } from './api.js';

const known = new Map();
const subscribers = new Set();
const pending = new Set();
let pendingCapped = false;
const pendingListeners = new Set();

export function getAction(id) { return known.get(id); }
export function hasAction(id) { return known.has(id); }
const pinned = new Set();
/** Drops an action that left the page, unless something (the open drawer) pinned it. */
export function forget(id) { if (!pinned.has(id)) known.delete(id); }
export function pin(id) { pinned.add(id); }
export function unpin(id) { pinned.delete(id); }

/** Called with (action, previous) after every change of a known action. */
export function subscribe(fn) { subscribers.add(fn); return () => subscribers.delete(fn); }

/** Merges `action` (full or partial, with `id`) into what is known and tells subscribers. */
export function upsert(action) {
  const previous = known.get(action.id);
  const merged = previous ? { ...previous, ...action } : { ...action };
  if (merged.status && merged.status !== 'pending_approval') merged.approval_token = null;
  known.set(action.id, merged);
  notePending(merged.id, merged.status);
  for (const fn of subscribers) fn(merged, previous);
  return merged;
}

/** Applies a live-stream message to known actions. Returns the partial update it carried. */
export function applyLive(data) {
  const partial = {};
  for (const key of ['id', 'status', 'decision', 'agent_id', 'tool', 'operation', 'reason', 'risk_level']) {
    if (data[key] !== undefined) partial[key] = data[key];
  }
  if (known.has(data.id)) upsert(partial);
  else notePending(data.id, data.status);
  return partial;
}

export function setPending(ids, capped) {
  pending.clear();
  ids.forEach((id) => pending.add(id));
  pendingCapped = capped;
  pendingChanged();
}

function notePending(id, status) {
  if (!status) return;
  const had = pending.has(id);
  if (status === 'pending_approval') pending.add(id); else pending.delete(id);
  if (had !== pending.has(id)) pendingChanged();
}

function pendingChanged() {
  for (const fn of pendingListeners) fn(pending.size, pendingCapped);
}

export function onPendingChange(fn) { pendingListeners.add(fn); }

/** Loads the pending-approval set (at most 1,000 ids). */
export async function refreshPending() {
  const list = await api('/v1/actions?status=pending_approval&limit=1000');
  setPending(list.map((a) => a.id), list.length >= 1000);
  for (const a of list) if (known.has(a.id)) upsert(a);
}

/** Fetches one action and records it. */
export async function fetchAction(id) {
  return upsert(await api(`/v1/actions/${encodeURIComponent(id)}`));
}

/**
 * Approves or denies a pending action. On success the updated action is recorded at once;
 * under an approval rule that needs several approvers it may still be pending.
 * On failure the action is re-read (it may have been decided elsewhere) and an ApiError
 * with a plain message is thrown.
 */
export async function decide(id, approve, reason) {
  const action = known.get(id);
  const verb = approve ? 'approve' : 'deny';
  if (!action?.approval_token) {
    throw new ApiError(0, `Cannot ${verb} this action: it has no approval token (it is not pending, or your token may not approve).`);
  }
  const body = { token: action.approval_token, approve };
  if (reason && reason.trim()) body.reason = reason.trim();
  try {
    return upsert(await api(`/v1/actions/${encodeURIComponent(id)}/approval`, { method: 'POST', body }));
  } catch (err) {
    let fresh = null;
    try { fresh = await fetchAction(id); } catch { /* keep the error about the decision */ }
    let message = String(err.detail ?? err).replace(/\.$/, '');
    // A 409 on an action that is still pending is not a lost race: under an approval rule
    // it is this person's second approval, and the server's words say so.
    if (err.status === 409 && fresh?.status === 'pending_approval') message = `${message}.`;
    else if (err.status === 409) message = `Already decided elsewhere: ${message}.`;
    else if (err.status === 403) message = `Not allowed: ${message}.`;
    else if (err.status === 404) message = `Not found: ${message}.`;
    throw new ApiError(err.status ?? 0, `Could not ${verb} action ${id.slice(0, 8)}: ${message}`);
  }
}
