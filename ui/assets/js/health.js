// The health view: whether the ledger chain of each of the most recent actions verifies
// (GET /v1/actions/{id}/chain), and how notification deliveries fare (failed and pending
// deliveries of GET /v1/notifications, the routes of GET /v1/notifications/routes).
// The latest checkpoint of the signed Merkle log, its signature checked here (logproof.js).
// Read when the view opens and on Refresh; nothing polls.

import { api, query } from './api.js';
import { latestCheckpoint } from './logproof.js';
import { $, deliveryOutcome, deliveryPill, h, localTime, replace, shortId } from './dom.js';

const RECENT = 20;

export function createHealthView({ openDrawer }) {
  const chainSummary = $('#health-chain-summary');
  const chainList = $('#health-chains');
  const deliverySummary = $('#health-delivery-summary');
  const failures = $('#health-failures');
  const errorNote = $('#health-error');
  const logSummary = $('#health-log-summary');
  const refreshButton = $('#health-refresh');
  let loadSeq = 0;

  refreshButton.addEventListener('click', () => load());
  for (const list of [chainList, failures]) {
    list.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-action]');
      if (button) openDrawer(button.dataset.action, button);
    });
  }

  async function load() {
    const seq = ++loadSeq;
    chainList.setAttribute('aria-busy', 'true');
    showLog(seq);
    const [actionsR, failedR, pendingR, routesR] = await Promise.allSettled([
      api(`/v1/actions${query({ limit: RECENT })}`),
      api(`/v1/notifications${query({ state: 'failed', limit: RECENT })}`),
      api(`/v1/notifications${query({ state: 'pending', limit: RECENT })}`),
      api('/v1/notifications/routes')]);
    if (seq !== loadSeq) return;
    const problems = [];
    if (actionsR.status === 'fulfilled' && Array.isArray(actionsR.value)) {
      const actions = actionsR.value;
      const chains = await Promise.allSettled(actions.map((a) => api(`/v1/actions/${encodeURIComponent(a.id)}/chain`)));
      if (seq !== loadSeq) return;
      showChains(actions, chains);
    } else {
      problems.push(`Could not load the recent actions: ${actionsR.reason?.detail ?? actionsR.reason ?? 'unexpected answer'}`);
    }
    chainList.removeAttribute('aria-busy');
    const routes = routesR.status === 'fulfilled' && Array.isArray(routesR.value) ? routesR.value : null;
    if (!routes) problems.push(`Could not load the routes: ${routesR.reason?.detail ?? routesR.reason ?? 'unexpected answer'}`);
    const failed = failedR.status === 'fulfilled' && Array.isArray(failedR.value) ? failedR.value : null;
    const waiting = pendingR.status === 'fulfilled' && Array.isArray(pendingR.value) ? pendingR.value : null;
    if (!failed || !waiting) problems.push(`Could not load the deliveries: ${(failed ? pendingR : failedR).reason?.detail ?? 'unexpected answer'}`);
    else showDeliveries(routes, failed, waiting);
    errorNote.textContent = problems.join(' ');
    errorNote.hidden = problems.length === 0;
  }

  async function showLog(seq) {
    let text;
    let tone;
    try {
      const checkpoint = await latestCheckpoint();
      text = `✓ Last checkpoint: ${checkpoint.size} event${checkpoint.size === 1 ? '' : 's'}, signed by ${checkpoint.origin}; signature verified.`;
      tone = 'ok';
    } catch (err) {
      text = `✗ The latest checkpoint does not verify: ${err?.detail ?? err?.message ?? err}`;
      tone = 'bad';
    }
    if (seq !== loadSeq) return;
    logSummary.className = `health-summary tone-${tone}`;
    replace(logSummary, text);
  }

  function showChains(actions, chains) {
    if (!actions.length) {
      replace(chainSummary, 'No actions yet: nothing to verify.');
      replace(chainList);
      return;
    }
    let bad = 0;
    let unchecked = 0;
    const items = actions.map((a, i) => {
      const r = chains[i];
      let mark;
      let text;
      let tone;
      if (r.status !== 'fulfilled' || !r.value || typeof r.value !== 'object') {
        unchecked += 1;
        mark = '? not checked'; tone = 'neutral';
        text = String(r.reason?.detail ?? r.reason ?? 'unexpected answer');
      } else if (r.value.verified) {
        mark = '✓ verified'; tone = 'ok';
        text = `${r.value.events ?? '?'} event${r.value.events === 1 ? '' : 's'}, chain intact and matching the action`;
      } else {
        bad += 1;
        mark = '✗ broken'; tone = 'bad';
        text = String(r.value.problem ?? r.value.binding_problem?.what ?? r.value.broken_link?.what ?? 'does not verify');
      }
      const label = `${a.tool ?? '?'} · ${a.operation ?? '?'}`;
      return h('li', { class: `health-item tone-line-${tone}`, dataset: { id: a.id, verified: String(tone === 'ok') } },
        h('span', { class: `pill tone-${tone} health-mark`, text: mark }),
        h('button', {
          type: 'button', class: 'link-btn mono', text: shortId(a.id), title: a.id,
          'aria-label': `Details of action ${shortId(a.id)}`, dataset: { action: a.id },
        }),
        h('span', { class: 'health-what', text: label }),
        h('span', { class: `health-result${tone === 'bad' ? ' delivery-error' : ' muted'}`, text }));
    });
    replace(chainList, items);
    const summary = bad
      ? `✗ ${bad} of the ${actions.length} most recent actions do not verify.`
      : unchecked
        ? `${actions.length - unchecked} of the ${actions.length} most recent actions verify; ${unchecked} could not be checked.`
        : `✓ The ${actions.length} most recent actions all verify.`;
    chainSummary.className = `health-summary ${bad ? 'tone-bad' : unchecked ? 'tone-neutral' : 'tone-ok'}`;
    replace(chainSummary, summary);
  }

  function showDeliveries(routes, failed, waiting) {
    const more = (list) => (list.length >= RECENT ? `${RECENT}+` : String(list.length));
    const parts = [];
    if (routes && !routes.length) {
      parts.push(h('p', { class: 'routes-none' },
        'No notification routes are configured: start ', h('code', { text: 'faramesh serve' }),
        ' with a routes file (', h('code', { text: '--notify FILE' }), ') to be told about approvals.'));
    } else if (routes) {
      parts.push(h('p', { class: 'muted', text: `${routes.length} route${routes.length === 1 ? '' : 's'}: ${routes.map((r) => String(r.name ?? '?')).join(', ')}` }));
    }
    parts.push(h('ul', { class: 'health-counts', 'aria-label': 'Delivery counts' },
      h('li', { class: failed.length ? 'tone-bad' : 'tone-ok' }, h('strong', { text: more(failed) }), ` failed`),
      h('li', { class: waiting.length ? 'tone-warn' : 'tone-ok' }, h('strong', { text: more(waiting) }), ` pending (being retried or not yet sent)`)));
    replace(deliverySummary, parts);
    if (!failed.length) {
      replace(failures, h('li', { class: 'muted', text: 'No failed deliveries.' }));
      return;
    }
    replace(failures, failed.map((n) => h('li', { class: 'health-item' },
      deliveryPill(n.state),
      h('span', { class: 'mono', text: String(n.route ?? '?') }),
      h('span', { text: String(n.kind ?? '?') }),
      n.action_id ? h('button', {
        type: 'button', class: 'link-btn mono', text: shortId(n.action_id), title: n.action_id,
        'aria-label': `Details of action ${shortId(n.action_id)}`, dataset: { action: n.action_id },
      }) : null,
      h('time', { class: 'muted', datetime: n.created_at, text: localTime(n.created_at) }),
      h('span', { class: 'health-result delivery-error', text: `${n.attempts ?? 0} attempt${n.attempts === 1 ? '' : 's'} · ${n.last_error ? String(n.last_error) : deliveryOutcome(n)}` }))));
  }

  return {
    show() { load(); },
    load,
    focusTarget: (id) => chainList.querySelector(`button[data-action="${CSS.escape(id)}"]`)
      ?? failures.querySelector(`button[data-action="${CSS.escape(id)}"]`),
  };
}
