// The confirmation asked before a keyboard decision on a high-risk action: a modal <dialog>
// that shows what will run. Enter confirms (the confirm button has focus), Escape cancels.

import { $, preview, shortId } from './dom.js';

let pending = null;

/** Asks whether to approve (or deny) `action`; resolves true only when the user confirms. */
export function confirmDecision(action, approve) {
  if (pending) return Promise.resolve(false);
  const dialog = $('#confirm-dialog');
  const verb = approve ? 'Approve' : 'Deny';
  const ok = $('#confirm-ok');
  $('#confirm-title').textContent = `${verb} this high-risk action?`;
  $('#confirm-message').textContent = `${action.tool ?? '?'} · ${action.operation ?? '?'} (${shortId(action.id)}) from ${action.agent_id ?? '?'}`
    + `${action.reason ? `: ${action.reason}` : ''}`;
  $('#confirm-params').textContent = preview(action.params, Infinity);
  ok.textContent = verb;
  ok.className = `btn ${approve ? 'btn-ok' : 'btn-bad'}`;
  ok.setAttribute('aria-label', `${verb} ${action.tool} ${action.operation} ${shortId(action.id)}`);
  pending = new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      pending = null;
      resolve(dialog.returnValue === 'confirm');
    }, { once: true });
  });
  dialog.returnValue = '';
  dialog.showModal();
  ok.focus();
  return pending;
}
