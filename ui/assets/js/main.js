// Entry point: wires the views, the live stream, the connection indicator, the title
// counter, the theme toggle and the hash routes (#/, #/policy, #/deliveries, #/health,
// #/action/<id>).

import { forgetToken, hasToken, onTokenChange } from './api.js';
import { $, h } from './dom.js';
import { createActionsView } from './actions.js';
import { createDeliveriesView } from './deliveries.js';
import { createDrawer } from './drawer.js';
import { createHealthView } from './health.js';
import { createPolicyView } from './policy.js';
import { startStream } from './stream.js';
import * as store from './store.js';
import { initThemeToggle } from './theme.js';

performance.mark('faramesh:start');

// ---- notices (errors shown plainly, until dismissed) --------------------------------------
const notices = $('#notices');
function notify(text) {
  const notice = h('div', { class: 'notice', role: 'alert' },
    h('span', { class: 'notice-text', text }),
    h('button', { type: 'button', class: 'btn btn-small', text: 'Dismiss', on: { click: () => notice.remove() } }));
  notices.append(notice);
  while (notices.children.length > 3) notices.firstElementChild.remove();
}

// ---- views ---------------------------------------------------------------------------------
const VIEW_HASHES = { actions: '#/', policy: '#/policy', deliveries: '#/deliveries', health: '#/health' };
let view = null;
let drawer;
const openDrawer = (id, from) => drawer.open(id, from);
const actions = createActionsView({ notify, openDrawer });
const deliveries = createDeliveriesView({ openDrawer });
const health = createHealthView({ openDrawer });
drawer = createDrawer({
  notify,
  focusTarget: (id) => (view === 'deliveries' ? deliveries.focusTarget(id) : view === 'health' ? health.focusTarget(id) : null)
    ?? actions.focusTarget(id),
  onOpen: (id) => {
    const hash = `#/action/${encodeURIComponent(id)}`;
    if (location.hash !== hash) history.replaceState(null, '', hash);
    // Opened from a view, the drawer stays over it; opened by its address, over the actions.
    if (!view) showView('actions');
  },
  onClose: () => { if (location.hash.startsWith('#/action/')) history.replaceState(null, '', VIEW_HASHES[view ?? 'actions']); },
});
const policy = createPolicyView();

function showView(name) {
  view = name;
  $('#view-actions').hidden = name !== 'actions';
  $('#view-policy').hidden = name !== 'policy';
  $('#view-deliveries').hidden = name !== 'deliveries';
  $('#view-health').hidden = name !== 'health';
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.view === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (name === 'policy') policy.show();
  if (name === 'deliveries') deliveries.show();
  if (name === 'health') health.show();
}

function route() {
  const hash = location.hash;
  if (hash.startsWith('#/action/')) {
    let id = hash.slice('#/action/'.length);
    try { id = decodeURIComponent(id); } catch { /* keep it as written */ }
    if (id && drawer.currentId !== id) drawer.open(id, null);
    return;
  }
  if (drawer.currentId) drawer.close();
  const views = { '#/policy': 'policy', '#/deliveries': 'deliveries', '#/health': 'health' };
  showView(views[hash] ?? 'actions');
}
window.addEventListener('hashchange', route);

// ---- title counter and pending button -----------------------------------------------------
const pendingButton = $('#pending-button');
store.onPendingChange((count, capped) => {
  const n = capped ? `${count}+` : String(count);
  document.title = count ? `(${n}) Faramesh` : 'Faramesh';
  pendingButton.textContent = count ? `${n} pending` : 'none pending';
  pendingButton.classList.toggle('has-pending', count > 0);
  pendingButton.setAttribute('aria-label', count ? `${n} actions pending approval: show them` : 'No action is pending approval');
});
pendingButton.addEventListener('click', () => {
  if (location.hash !== '#/' && location.hash !== '') location.hash = '#/';
  actions.showPending();
});

// ---- connection indicator -----------------------------------------------------------------
const conn = $('#conn');
const connText = $('#conn-text');
function setConnection(state, info) {
  conn.dataset.state = state;
  if (state === 'live') connText.textContent = 'Live';
  else if (state === 'connecting') connText.textContent = 'Connecting…';
  else connText.textContent = info?.retryInMs
    ? `Reconnecting in ${Math.ceil(info.retryInMs / 1000)} s…`
    : 'Reconnecting…';
  conn.title = state === 'live' ? 'Receiving live updates' : 'Not receiving live updates; retrying';
}

// ---- token --------------------------------------------------------------------------------
const forgetButton = $('#forget-token');
forgetButton.hidden = !hasToken();
forgetButton.addEventListener('click', () => { forgetToken(); location.reload(); });

// ---- start --------------------------------------------------------------------------------
initThemeToggle($('#theme-toggle'));
route();

let stream = null;
const firstLoad = actions.load().then(() => {
  performance.mark('faramesh:first-rows');
  // Measure after the frame that shows the rows has been painted.
  requestAnimationFrame(() => setTimeout(() => {
    performance.mark('faramesh:first-paint-rows');
    performance.measure('faramesh:first-rows-painted', { start: 0, end: 'faramesh:first-paint-rows' });
    document.documentElement.dataset.ready = 'true';
  }));
});
firstLoad.then(() => {
  store.refreshPending().catch(() => {});
  stream = startStream({
    onMessage: (message) => actions.applyMessage(message),
    onState: setConnection,
    onOpen: (isReconnect) => {
      // After an outage (or a first load that failed) re-read what may have been missed.
      if (isReconnect || !actions.isLoaded()) {
        actions.load();
        store.refreshPending().catch(() => {});
        drawer.refresh();
      }
    },
  });
});

onTokenChange((present) => {
  forgetButton.hidden = !present;
  if (present && stream) stream.restart();
});
