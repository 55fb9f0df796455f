// The deliveries view: what the routes file announced about approvals (GET /v1/notifications)
// and whether each receiver got it, with the routes the server knows
// (GET /v1/notifications/routes). Read when the view opens and on Refresh; nothing polls.

import { api, query } from './api.js';
import { $, deliveryOutcome, deliveryPill, h, localTime, replace, shortId } from './dom.js';

const LIMIT = 100;

export function createDeliveriesView({ openDrawer }) {
  const routesInfo = $('#delivery-routes');
  const body = $('#deliveries-body');
  const emptyNote = $('#deliveries-empty');
  const errorNote = $('#deliveries-error');
  const count = $('#deliveries-count');
  const fState = $('#d-state');
  const fRoute = $('#d-route');
  const refreshButton = $('#deliveries-refresh');
  let loadSeq = 0;

  $('#delivery-filters').addEventListener('submit', (e) => e.preventDefault());
  fState.addEventListener('change', () => load());
  fRoute.addEventListener('change', () => load());
  refreshButton.addEventListener('click', () => load());

  body.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (button) openDrawer(button.dataset.action, button);
  });

  /** Reads the routes and the deliveries that match the filters. */
  async function load() {
    const seq = ++loadSeq;
    body.setAttribute('aria-busy', 'true');
    const q = query({ limit: LIMIT, state: fState.value, route: fRoute.value });
    const [routesR, listR] = await Promise.allSettled([api('/v1/notifications/routes'), api(`/v1/notifications${q}`)]);
    if (seq !== loadSeq) return;
    body.removeAttribute('aria-busy');
    const problems = [];
    if (routesR.status === 'fulfilled' && Array.isArray(routesR.value)) showRoutes(routesR.value);
    else problems.push(`Could not load the routes: ${routesR.reason?.detail ?? routesR.reason ?? 'unexpected answer'}`);
    if (listR.status === 'fulfilled' && Array.isArray(listR.value)) showList(listR.value);
    else problems.push(`Could not load the deliveries: ${listR.reason?.detail ?? listR.reason ?? 'unexpected answer'}`);
    errorNote.textContent = problems.join(' ');
    errorNote.hidden = problems.length === 0;
  }

  function showRoutes(routes) {
    if (!routes.length) {
      replace(routesInfo, h('p', { class: 'routes-none' },
        'No notification routes: start ', h('code', { text: 'faramesh serve' }),
        ' with a routes file (', h('code', { text: '--notify FILE' }), ').'));
    } else {
      replace(routesInfo, h('p', { class: 'routes-line' },
        h('span', { class: 'routes-label', text: routes.length === 1 ? 'Route:' : 'Routes:' }),
        h('ul', { class: 'route-list', 'aria-label': 'Notification routes' }, routes.map((r) => h('li', { class: 'route' },
          h('code', { text: String(r.name ?? '?') }), ' ',
          h('span', { class: 'muted', text: String(r.kind ?? '?') }),
          r.escalation ? [' ', h('span', { class: 'badge badge-escalation', text: 'escalation', title: 'Told when an approval escalates' })] : null)))));
    }
    // The route filter offers the routes the server has now, and keeps the one chosen.
    const chosen = fRoute.value;
    const names = routes.map((r) => String(r.name ?? '')).filter(Boolean);
    if (chosen && !names.includes(chosen)) names.push(chosen);
    replace(fRoute, h('option', { value: '', text: 'Any route' }), names.map((name) => h('option', { value: name, text: name })));
    fRoute.value = chosen;
  }

  function showList(list) {
    replace(body, list.map(deliveryRow));
    const filtered = fState.value || fRoute.value;
    count.textContent = list.length >= LIMIT ? `The newest ${LIMIT} deliveries` : `${list.length} deliver${list.length === 1 ? 'y' : 'ies'}`;
    if (!list.length) {
      emptyNote.textContent = filtered ? 'No deliveries match these filters.'
        : 'No deliveries yet. Routes announce approval requests, decisions, expiries and escalations here.';
      emptyNote.hidden = false;
    } else {
      emptyNote.hidden = true;
    }
  }

  function deliveryRow(n) {
    const failing = n.state !== 'delivered' && Boolean(n.last_error);
    return h('tr', { dataset: { id: String(n.id ?? ''), state: String(n.state ?? '') } },
      h('td', { 'data-label': 'Time' }, h('time', { datetime: n.created_at, title: n.created_at, text: localTime(n.created_at) })),
      h('td', { 'data-label': 'Route', class: 'mono', text: String(n.route ?? '—') }),
      h('td', { 'data-label': 'Kind', text: String(n.kind ?? '—') }),
      h('td', { 'data-label': 'Action' }, n.action_id
        ? h('button', {
          type: 'button', class: 'link-btn mono', text: shortId(n.action_id), title: n.action_id,
          'aria-label': `Details of action ${shortId(n.action_id)}`, dataset: { action: n.action_id },
        })
        : h('span', { class: 'muted', text: '—' })),
      h('td', { 'data-label': 'State' }, deliveryPill(n.state)),
      h('td', { 'data-label': 'Attempts', text: String(n.attempts ?? 0) }),
      h('td', { 'data-label': 'Outcome', class: failing ? 'wrap delivery-error' : 'wrap', text: deliveryOutcome(n) }));
  }

  return {
    /** Shows the view: its data is read again each time. */
    show() { load(); },
    load,
    /** The "details" button of an action's delivery, to return focus to when the drawer closes. */
    focusTarget: (id) => body.querySelector(`button[data-action="${CSS.escape(id)}"]`),
  };
}
