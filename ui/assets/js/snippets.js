// Copyable command snippets. The bearer token is never written into them: curl commands
// read it from $FARAMESH_TOKEN.

import { h } from './dom.js';
import { hasToken } from './api.js';

/** Single-quotes a string for a POSIX shell. */
export function shellQuote(text) {
  return `'${String(text).replace(/'/g, `'\\''`)}'`;
}

/** curl commands for one action: get, events, chain, and approve/deny while it is pending. */
export function curlCommands(action, base = location.origin) {
  const auth = hasToken() ? ' -H "Authorization: Bearer $FARAMESH_TOKEN"' : '';
  const url = `${base}/v1/actions/${encodeURIComponent(action.id)}`;
  const list = [
    ['Get this action', `curl -s${auth} ${shellQuote(url)}`],
    ['Event timeline', `curl -s${auth} ${shellQuote(`${url}/events`)}`],
    ['Verify the hash chain', `curl -s${auth} ${shellQuote(`${url}/chain`)}`],
  ];
  if (action.status === 'pending_approval' && action.approval_token) {
    for (const approve of [true, false]) {
      const body = JSON.stringify({ token: action.approval_token, approve, reason: approve ? 'Approved' : 'Denied' });
      list.push([
        approve ? 'Approve' : 'Deny',
        `curl -s -X POST${auth} -H 'Content-Type: application/json' -d ${shellQuote(body)} ${shellQuote(`${url}/approval`)}`,
      ]);
    }
  }
  return list;
}

/** Copies text to the clipboard; falls back to selecting it where the Clipboard API is unavailable. */
export async function copyText(text, pre) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return true;
  }
  const selection = window.getSelection();
  const range = document.createRange();
  range.selectNodeContents(pre);
  selection.removeAllRanges();
  selection.addRange(range);
  // execCommand is deprecated but remains the only way without the Clipboard API.
  return document.execCommand('copy');
}

/** A titled code block with a Copy button. */
export function snippet(title, text) {
  const code = h('pre', { class: 'code', tabindex: '0', 'aria-label': title, text });
  const status = h('span', { class: 'copy-status', role: 'status' });
  const button = h('button', {
    type: 'button',
    class: 'btn btn-small',
    'aria-label': `Copy: ${title}`,
    text: 'Copy',
    on: {
      click: async () => {
        try {
          const ok = await copyText(text, code);
          status.textContent = ok ? 'Copied' : 'Selected: press Ctrl+C to copy';
        } catch {
          status.textContent = 'Copy failed: select the text and copy it';
        }
        setTimeout(() => { status.textContent = ''; }, 2500);
      },
    },
  });
  return h('div', { class: 'snippet' },
    h('div', { class: 'snippet-head' }, h('span', { class: 'snippet-title', text: title }), status, button),
    code);
}
