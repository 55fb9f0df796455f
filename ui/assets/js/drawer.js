// The detail drawer: what the action will run (params, or an MCP call's arguments) first, then
// approve/deny with a reason (after the content it decides on), then the decision
// and its hashes, the approvals under an approval rule, its notifications, the event timeline
// with the hash-chain status, the executor's result, approve/deny with a reason, and copyable
// curl commands and SDK snippets.

import { api, query } from './api.js';
import { $, approvalsText, deliveryOutcome, deliveryPill, formatNumber, h, hasQuorum, localTime, mcpOf, pill, pretty, replace, shortId } from './dom.js';
import { proveIncluded } from './logproof.js';
import { curlCommands, snippet } from './snippets.js';
import * as store from './store.js';

// Shown in their own sections rather than in "All fields".
const OWN_SECTION = new Set(['params', 'context', 'result', 'js_example', 'python_example']);

export function createDrawer({ notify, focusTarget, onOpen, onClose }) {
  const drawer = $('#drawer');
  const backdrop = $('#drawer-backdrop');
  const title = $('#drawer-title');
  const subtitle = $('#drawer-subtitle');
  const closeButton = $('#drawer-close');
  const content = $('#drawer-content');
  const outside = ['#main', '#topbar', '#notices'].map((s) => $(s));

  let currentId = null;
  let opener = null;
  let refreshTimer = null;
  let loadSeq = 0;
  let events = null;
  let chain = null;
  // Whether the events are in the signed Merkle log (see logproof.js).
  let inLog = null;
  let notifications = null;
  let sideError = null;

  // Sections that keep their state (the reason the user is typing) across refreshes.
  const decideError = h('p', { class: 'error', role: 'alert', hidden: true });
  const decideNote = h('p', { class: 'decide-note', role: 'status', hidden: true });
  const reasonInput = h('textarea', { id: 'drawer-reason', rows: '2', maxlength: '1000', autocomplete: 'off' });
  const approveButton = h('button', { type: 'button', class: 'btn btn-ok', text: 'Approve' });
  const denyButton = h('button', { type: 'button', class: 'btn btn-bad', text: 'Deny' });
  const decideWhy = h('p', { class: 'decide-why' });
  const decideSection = h('section', { class: 'drawer-section decide-panel', 'aria-labelledby': 'decide-heading' },
    h('h3', { id: 'decide-heading', text: 'Waiting for your decision' }),
    decideWhy,
    h('label', { for: 'drawer-reason', text: 'Reason (optional)' }),
    reasonInput,
    h('div', { class: 'button-row' }, approveButton, denyButton),
    decideNote,
    decideError);
  // What the decision is about comes before the decision box; the rest after it.
  const top = h('div', { class: 'drawer-body' });
  const body = h('div', { class: 'drawer-body' });
  content.replaceChildren(top, decideSection, body);

  closeButton.addEventListener('click', close);
  backdrop.addEventListener('click', close);
  approveButton.addEventListener('click', () => act(true));
  denyButton.addEventListener('click', () => act(false));
  document.addEventListener('keydown', (event) => {
    if (drawer.hidden || document.querySelector('dialog[open]')) return;
    if (event.key === 'Escape') { event.preventDefault(); close(); }
    if (event.key === 'Tab') trapFocus(event);
  });

  store.subscribe((action) => {
    if (action.id !== currentId) return;
    render();
    scheduleRefresh();
  });

  function trapFocus(event) {
    const focusable = [...drawer.querySelectorAll('button, [href], input, textarea, select, [tabindex]:not([tabindex="-1"])')]
      .filter((el) => !el.disabled && !el.closest('[hidden]') && el.getClientRects().length > 0);
    if (!focusable.length) return;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (!drawer.contains(document.activeElement)) { event.preventDefault(); first.focus(); }
    else if (event.shiftKey && document.activeElement === first) { event.preventDefault(); last.focus(); }
    else if (!event.shiftKey && document.activeElement === last) { event.preventDefault(); first.focus(); }
  }

  async function open(id, from) {
    if (currentId && currentId !== id) store.unpin(currentId);
    const switching = currentId !== id;
    currentId = id;
    store.pin(id);
    opener = from ?? opener;
    if (switching) {
      events = null; chain = null; inLog = null; notifications = null; sideError = null;
      reasonInput.value = '';
      decideError.hidden = true;
      decideNote.hidden = true;
    }
    drawer.hidden = false;
    backdrop.hidden = false;
    outside.forEach((el) => { if (el) el.inert = true; });
    document.body.classList.add('drawer-open');
    onOpen?.(id);
    render();
    // Another action opens at its top (with its decision box), not where the last one was scrolled.
    if (switching) content.scrollTop = 0;
    closeButton.focus();
    await refresh();
  }

  function close() {
    if (drawer.hidden) return;
    drawer.hidden = true;
    backdrop.hidden = true;
    outside.forEach((el) => { if (el) el.inert = false; });
    document.body.classList.remove('drawer-open');
    const id = currentId;
    store.unpin(id);
    currentId = null;
    clearTimeout(refreshTimer);
    const target = (opener && opener.isConnected) ? opener : focusTarget(id);
    opener = null;
    target?.focus();
    onClose?.();
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, 150);
  }

  /** Re-reads the action, its events, its chain status and its notifications. */
  async function refresh() {
    const id = currentId;
    if (!id) return;
    const seq = ++loadSeq;
    const path = `/v1/actions/${encodeURIComponent(id)}`;
    const [actionR, eventsR, chainR, notificationsR] = await Promise.allSettled([
      api(path), api(`${path}/events`), api(`${path}/chain`),
      api(`/v1/notifications${query({ action_id: id, limit: 50 })}`)]);
    if (seq !== loadSeq || id !== currentId) return;
    sideError = null;
    if (eventsR.status === 'fulfilled') {
      events = eventsR.value;
      checkLog(id, seq, events);
    } else sideError = `Could not load the events: ${eventsR.reason?.detail ?? eventsR.reason}`;
    if (chainR.status === 'fulfilled') chain = chainR.value; else chain = { error: chainR.reason?.detail ?? String(chainR.reason) };
    // Notifications are a side note: when they cannot be read the section is left out.
    if (notificationsR.status === 'fulfilled' && Array.isArray(notificationsR.value)) notifications = notificationsR.value;
    if (actionR.status === 'fulfilled') {
      // upsert re-renders through the subscription; avoid a second refresh from it.
      store.upsert(actionR.value);
      clearTimeout(refreshTimer);
    } else {
      sideError = `Could not load action ${shortId(id)}: ${actionR.reason?.detail ?? actionR.reason}`;
      render();
    }
  }

  /** Proves the events are in the latest signed checkpoint, then shows it. */
  async function checkLog(id, seq, checked) {
    const verdict = await proveIncluded(checked);
    if (seq !== loadSeq || id !== currentId) return;
    inLog = verdict;
    // A new action's events reach a checkpoint within seconds: look again then.
    if (verdict.pending) setTimeout(() => { if (id === currentId) scheduleRefresh(); }, 2000);
    render();
  }

  async function act(approve) {
    const id = currentId;
    approveButton.disabled = true;
    denyButton.disabled = true;
    decideError.hidden = true;
    decideNote.hidden = true;
    try {
      const updated = await store.decide(id, approve, reasonInput.value);
      reasonInput.value = '';
      if (id !== currentId) return;
      if (updated?.status === 'pending_approval') {
        // An approval before the quorum: the action waits for the others.
        decideNote.textContent = 'Your approval is recorded. The action stays pending until enough other people approve.';
        decideNote.hidden = false;
      }
      closeButton.focus();
    } catch (err) {
      decideError.textContent = err.detail ?? String(err);
      decideError.hidden = false;
      notify(err.detail ?? String(err));
    } finally {
      approveButton.disabled = false;
      denyButton.disabled = false;
    }
  }

  function render() {
    const a = store.getAction(currentId);
    if (!a) {
      title.textContent = `Action ${shortId(currentId)}`;
      replace(subtitle, sideError ? '' : 'Loading…');
      decideSection.hidden = true;
      replace(top);
      replace(body, sideError ? h('p', { class: 'error', role: 'alert', text: sideError }) : h('p', { text: 'Loading…' }));
      return;
    }
    title.textContent = `${a.tool ?? '?'} · ${a.operation ?? '?'}`;
    const mcp = mcpOf(a);
    const progress = a.status === 'pending_approval' ? approvalsText(a) : null;
    replace(subtitle,
      pill('status', a.status), ' ',
      progress ? h('span', { class: 'approvals-count', text: progress }) : null, progress ? ' ' : null,
      pill('risk', a.risk_level), ' ',
      mcp ? h('span', { class: 'badge badge-mcp', text: 'MCP' }) : null, mcp ? ' ' : null,
      a.demo ? h('span', { class: 'badge badge-demo', text: 'demo' }) : null, a.demo ? ' ' : null,
      h('span', { class: 'mono', text: a.id }));
    const canDecide = a.status === 'pending_approval' && Boolean(a.approval_token);
    decideSection.hidden = !canDecide;
    if (!canDecide) decideNote.hidden = true;
    const waited = a.created_at ? ` · waiting since ${localTime(a.created_at)}` : '';
    decideWhy.textContent = `${a.reason ? String(a.reason) : 'Pending approval'} · risk ${a.risk_level ?? 'unknown'} · from ${a.agent_id ?? '?'}${waited}`;
    const label = `${a.tool} ${a.operation} ${shortId(a.id)}`;
    approveButton.setAttribute('aria-label', `Approve ${label}`);
    denyButton.setAttribute('aria-label', `Deny ${label}`);

    const focusedKey = document.activeElement?.dataset?.key;
    replace(top,
      sideError ? h('p', { class: 'error', role: 'alert', text: sideError }) : null,
      mcp ? mcpSection(a, mcp) : null,
      jsonSection(mcp ? 'Arguments' : 'Params', a.params, 'params'),
      jsonSection('Context', a.context, 'context'),
      hasQuorum(a) ? approvalsSection(a) : null);
    replace(body,
      decisionSection(a),
      notificationsSection(),
      resultSection(a),
      timelineSection(),
      fieldsSection(a),
      snippetsSection(a));
    // Keep keyboard focus on the same control when a live update re-renders the drawer.
    if (focusedKey) content.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`)?.focus();
  }

  function section(heading, key, ...children) {
    const id = `drawer-h-${key}`;
    return h('section', { class: 'drawer-section', 'aria-labelledby': id }, h('h3', { id, text: heading }), ...children);
  }

  function decisionSection(a) {
    const by = a.reason_details?.decided_by;
    let rule = null;
    if (by && typeof by === 'object') {
      const parts = [by.kind === 'policy_rule' ? 'policy rule' : String(by.kind ?? 'rule')];
      if (by.number != null) parts.push(`#${by.number}`);
      if (by.name) parts.push(`“${by.name}”`);
      if (by.line != null) parts.push(`(line ${by.line})`);
      rule = parts.join(' ');
    }
    // What the shadow policy (never enforced) would have done, when it disagreed.
    const shadow = a.reason_details?.shadow;
    const shadowText = shadow && typeof shadow === 'object'
      ? `would be ${String(shadow.outcome ?? '?')} (${String(shadow.reason_code ?? '?')}): ${String(shadow.reason ?? '')}`
      : null;
    // `when` expressions that could not be evaluated, and how each counted.
    const failures = Array.isArray(a.reason_details?.expression_failures)
      ? a.reason_details.expression_failures
        .map((f) => `${String(f?.rule ?? '?')}: ${String(f?.error ?? '?')} (${f?.counted_as_match ? 'counted as matching' : 'counted as not matching'})`)
        .join('; ')
      : null;
    // The limit that bit (LIMIT_EXCEEDED): its usage before this action, or why it could not be counted.
    const limit = a.reason_details?.limit;
    const limitText = limit && typeof limit === 'object' ? limitUsageText(limit) : null;
    return section('Decision', 'decision', dl([
      ['Reason', a.reason],
      ['Decision', a.decision],
      ['Outcome', a.outcome],
      ['Reason code', a.reason_code],
      ['Decided by', rule],
      ...(limitText ? [['Limit', limitText]] : []),
      ...(failures ? [['Expression failures', failures]] : []),
      ...(shadowText ? [['Shadow policy', shadowText]] : []),
      ['Risk rule', a.reason_details?.risk_rule ? pretty(a.reason_details.risk_rule) : null],
      ['Policy version', a.policy_version],
      ['Request hash', a.request_hash, 'hash'],
      ['Policy hash', a.policy_hash, 'hash'],
      ['Profile hash', a.profile_hash, 'hash'],
      ['Provenance id', a.provenance_id, 'hash'],
    ]));
  }

  /** The approvals an action under an approval rule has, and needs: who, when, and why. */
  function approvalsSection(a) {
    const given = Array.isArray(a.approvals) ? a.approvals : [];
    const rule = a.reason_details?.approval;
    const missing = a.approvals_required - given.length;
    const summary = h('p', { class: 'approvals-progress' },
      h('strong', { text: approvalsText(a) }),
      a.status === 'pending_approval' && missing > 0
        ? h('span', { class: 'muted', text: ` — ${missing} more needed; each person counts once, and never whoever submitted the action.` })
        : null);
    const list = given.length
      ? h('ol', { class: 'approvals-list' }, given.map((g) => h('li', {},
        h('span', { class: 'approval-by', text: String(g?.by ?? '?') }), ' ',
        h('time', { datetime: g?.at, title: g?.at, text: localTime(g?.at) }),
        g?.reason ? h('p', { class: 'approval-reason', text: String(g.reason) }) : null)))
      : h('p', { class: 'muted', text: 'No approvals yet.' });
    const rows = [['May approve', whoMayApprove(rule)]];
    if (rule?.submitted_by) rows.push(['Submitted by', `${rule.submitted_by} (may not approve it)`]);
    return section('Approvals', 'approvals', summary, list, dl(rows));
  }

  /** The notifications the routes file sent (or is sending) about this action, if any. */
  function notificationsSection() {
    if (!notifications?.length) return null;
    return section('Notifications', 'notifications', h('ul', { class: 'notification-list' }, notifications.map((n) => h('li', {},
      h('span', { class: 'mono', text: String(n.route ?? '?') }), ' ',
      h('span', { text: String(n.kind ?? '?') }), ' ',
      deliveryPill(n.state),
      h('span', { class: 'notification-detail muted', text: `${n.attempts ?? 0} attempt${n.attempts === 1 ? '' : 's'} · ${deliveryOutcome(n)}` })))));
  }

  /** An MCP tool call: which server and tool, from which client and session. */
  function mcpSection(a, mcp) {
    const client = mcp.client && typeof mcp.client === 'object'
      ? [mcp.client.name, mcp.client.version].filter(Boolean).join(' ')
      : null;
    return section('MCP call', 'mcp', dl([
      ['Server', mcp.server ?? a.tool],
      ['Tool', a.operation],
      ['Client', client],
      ['Session', mcp.session, 'hash'],
      ['Transport', mcp.transport],
      ['Protocol', mcp.protocol_version],
    ]));
  }

  function jsonSection(heading, value, key) {
    return section(heading, key, h('pre', { class: 'code json', tabindex: '0', 'aria-label': heading, text: pretty(value ?? {}) }));
  }

  function resultSection(a) {
    const r = a.result;
    if (r === null || r === undefined) {
      return section('Result', 'result', h('p', { class: 'muted', text: 'No executor output recorded.' }));
    }
    if (typeof r === 'object' && !Array.isArray(r) && ('stdout' in r || 'stderr' in r || 'exit_code' in r)) {
      return section('Result', 'result',
        dl([['Exit code', r.exit_code], ['Duration', r.duration_ms != null ? `${r.duration_ms} ms` : null]]),
        h('h4', { text: `stdout${r.stdout_truncated ? ' (truncated)' : ''}` }),
        h('pre', { class: 'code output', tabindex: '0', 'aria-label': 'stdout', text: r.stdout || '(empty)' }),
        h('h4', { text: `stderr${r.stderr_truncated ? ' (truncated)' : ''}` }),
        h('pre', { class: 'code output', tabindex: '0', 'aria-label': 'stderr', text: r.stderr || '(empty)' }));
    }
    return section('Result', 'result', h('pre', { class: 'code output', tabindex: '0', 'aria-label': 'Result', text: pretty(r) }));
  }

  function timelineSection() {
    let status;
    if (!chain) status = h('span', { class: 'pill tone-neutral', text: 'checking chain…' });
    else if (chain.error) status = h('span', { class: 'pill tone-neutral', text: `chain not checked: ${chain.error}` });
    else if (chain.verified) status = h('span', { class: 'pill tone-ok chain-status', text: `✓ chain verified (${chain.events} events)` });
    else if (!chain.broken_link && chain.binding_problem) {
      // The chain holds, but the action row is not the one its chain describes (rewritten
      // params or status, or no events at all).
      status = h('div', { class: 'chain-broken', role: 'alert' },
        h('span', { class: 'pill tone-bad chain-status', text: '✗ action does not match its ledger' }),
        h('p', { text: chain.problem ?? chain.binding_problem.what ?? 'the stored action differs from its ledger' }));
    } else {
      const b = chain.broken_link ?? {};
      status = h('div', { class: 'chain-broken', role: 'alert' },
        h('span', { class: 'pill tone-bad chain-status', text: '✗ chain broken' }),
        h('p', { text: `At event ${b.position ?? '?'} (${b.event_id ?? '?'}): ${b.what ?? 'hash mismatch'}.` }),
        h('p', { class: 'mono wrap', text: `expected ${b.expected ?? '—'}` }),
        h('p', { class: 'mono wrap', text: `found ${b.found ?? '—'}` }));
    }
    let list;
    if (!events) list = h('p', { class: 'muted', text: 'Loading events…' });
    else if (!events.length) list = h('p', { class: 'muted', text: 'No events.' });
    else {
      list = h('ol', { class: 'timeline' }, events.map((e) => h('li', { class: 'timeline-item' },
        h('div', { class: 'timeline-head' },
          h('span', { class: `pill tone-${eventTone(e.event_type)}`, text: e.event_type }),
          ' ',
          h('time', { datetime: e.created_at, title: e.created_at, text: localTime(e.created_at) })),
        metaList(e.meta),
        h('p', { class: 'hash-line mono', title: `record_hash ${e.record_hash}\nprev_hash ${e.prev_hash ?? 'none'}`,
          text: `record ${String(e.record_hash ?? '').slice(0, 16)}… ← prev ${e.prev_hash ? `${e.prev_hash.slice(0, 16)}…` : 'none'}` }))));
    }
    let logStatus;
    if (!inLog) logStatus = h('span', { class: 'pill tone-neutral', text: 'checking the signed log…' });
    else if (inLog.verified) logStatus = h('span', { class: 'pill tone-ok log-status', text: `✓ included in checkpoint ${inLog.size} (verified)` });
    else if (inLog.pending) logStatus = h('span', { class: 'pill tone-neutral log-status', text: `not in a checkpoint yet (latest: ${inLog.size})` });
    else logStatus = h('span', { class: 'pill tone-bad log-status', role: 'alert', text: `✗ not proved in the signed log: ${inLog.problem}` });
    return section('Event timeline', 'timeline', h('div', { class: 'chain' }, status, ' ', logStatus), list);
  }

  function metaList(meta) {
    if (!meta || typeof meta !== 'object') return null;
    const items = Object.entries(meta).filter(([, v]) => v !== null && v !== undefined);
    if (!items.length) return null;
    return h('dl', { class: 'meta' }, items.map(([k, v]) => [
      h('dt', { text: k }),
      h('dd', {}, typeof v === 'object' ? h('pre', { class: 'code', text: pretty(v) }) : String(v)),
    ]));
  }

  function fieldsSection(a) {
    const entries = Object.keys(a).filter((k) => !OWN_SECTION.has(k)).map((k) => {
      const v = a[k];
      return [k, typeof v === 'object' && v !== null ? pretty(v) : v, typeof v === 'object' && v !== null ? 'pre' : 'mono'];
    });
    return section('All fields', 'fields', dl(entries));
  }

  function snippetsSection(a) {
    const list = curlCommands(a).map(([t, cmd]) => snippet(`curl: ${t}`, cmd));
    if (a.js_example) list.push(snippet('JavaScript SDK', a.js_example));
    if (a.python_example) list.push(snippet('Python SDK', a.python_example));
    list.forEach((el, i) => el.querySelector('button')?.setAttribute('data-key', `copy-${i}`));
    return section('Commands', 'commands', ...list);
  }

  return {
    open,
    close,
    refresh,
    get currentId() { return currentId; },
  };
}

/** A definition list; values are text (`null` shows as an em dash). */
function dl(entries) {
  return h('dl', { class: 'fields' }, entries.map(([k, v, kind]) => [
    h('dt', { text: k }),
    h('dd', { class: kind === 'hash' ? 'mono wrap' : kind === 'mono' ? 'wrap' : null },
      kind === 'pre' ? h('pre', { class: 'code', text: String(v) }) : (v === null || v === undefined || v === '' ? '—' : String(v))),
  ]));
}

/**
 * "shell-burst: 20 of 20 used in 1h (agent:bot-7)"; a budget adds what the action would have
 * spent; an action whose number could not be read says why.
 */
function limitUsageText(limit) {
  const name = String(limit.name ?? '?');
  if (limit.unreadable) return `${name}: ${String(limit.unreadable)}`;
  const calls = Number(limit.amount) === 1 && Number.isInteger(Number(limit.used)) && Number.isInteger(Number(limit.max));
  const adds = calls ? '' : `, and this action adds ${formatNumber(limit.amount)}`;
  return `${name}: ${formatNumber(limit.used)} of ${formatNumber(limit.max)} used in ${String(limit.window ?? '?')}${adds} (${String(limit.key ?? '?')})`;
}

/** Who an approval rule admits: its `roles` (roles or named tokens), or any approver or admin. */
function whoMayApprove(rule) {
  const roles = Array.isArray(rule?.roles) ? rule.roles : [];
  if (!roles.length) return 'any token with the approver or admin role';
  return roles.map((r) => (r?.kind === 'token' ? `token ${r.name}` : `the ${r?.name ?? '?'} role`)).join(', ');
}

function eventTone(type) {
  switch (type) {
    case 'approved': case 'succeeded': return 'ok';
    case 'denied': case 'failed': case 'timeout': return 'bad';
    case 'started': case 'decision_made': case 'approval_recorded': return 'info';
    case 'escalated': return 'warn';
    default: return 'neutral';
  }
}
