// The action table: server-side filters (status, and a piece of an agent, tool or operation
// name searched over the whole ledger) and pagination, a free-text search over the loaded page, live updates from the stream, and approve/deny per row.
// A pending row is an inbox entry: its full params (what will run), why it waits, who waits
// and for how long, then Approve/Deny. Keys: j/k select a row, a/d approve/deny it (a
// high-risk action asks first), Enter opens its details.
// Rows are built with DOM APIs from a cloned template and written in batches; a row is
// kept (not rebuilt) while its action stays on the page, so typing and focus survive updates.

import { api, query } from './api.js';
import { confirmDecision } from './confirm.js';
import { $, age, approvalsText, h, hasQuorum, localTime, mcpOf, pill, preview, shortId } from './dom.js';
import * as store from './store.js';

const PAGE_SIZE_KEY = 'faramesh.pageSize';
const PAGE_SIZES = [25, 50, 100, 250, 500, 1000];
// Above this many unknown new actions at once, the page is re-read instead of fetched one by one.
const MAX_SINGLE_FETCHES = 25;

export function createActionsView({ notify, openDrawer }) {
  const body = $('#actions-body');
  const emptyNote = $('#table-empty');
  const pageInfo = $('#page-info');
  const newer = $('#page-newer');
  const older = $('#page-older');
  const pageSize = $('#page-size');
  const banner = $('#new-banner');
  const bannerButton = $('#new-banner button');
  const fStatus = $('#f-status');
  const fFind = $('#f-find');
  const fSearch = $('#f-search');
  const searchCount = $('#search-count');

  const state = {
    limit: readPageSize(),
    offset: 0,
    status: '',
    find: '',
    q: '',
    lastCount: 0,
    loaded: false,
    newElsewhere: 0,
  };
  /** id -> row entry (its <tr>, cells, the action shown and what was last written). */
  const rows = new Map();
  const template = rowTemplate();
  const decideTemplate = h('div', { class: 'decide' },
    h('input', { type: 'text', class: 'reason-input', placeholder: 'Reason (optional)', autocomplete: 'off', maxlength: '1000' }),
    h('button', { type: 'button', class: 'btn btn-ok btn-small', dataset: { decide: 'approve' }, text: 'Approve' }),
    h('button', { type: 'button', class: 'btn btn-bad btn-small', dataset: { decide: 'deny' }, text: 'Deny' }));
  let loadController = null;
  let fetchQueue = new Set();
  let fetchTimer = null;
  // A response that left the server before a live message about the same action is older
  // than what the row shows: such actions are re-read instead of overwritten.
  let liveSeq = 0;
  let inFlight = 0;
  const touched = new Map();
  const beginRequest = () => { inFlight += 1; return liveSeq; };
  const endRequest = () => { inFlight -= 1; if (inFlight === 0) touched.clear(); };
  const staleSince = (id, seq) => (touched.get(id) ?? 0) > seq;

  for (const size of PAGE_SIZES) pageSize.append(h('option', { value: String(size), text: String(size) }));
  pageSize.value = String(state.limit);

  // ---- filters, search and paging ------------------------------------------------------
  const form = $('#filters');
  let filterTimer = null;
  form.addEventListener('submit', (e) => e.preventDefault());
  form.addEventListener('reset', () => {
    // The form resets its fields after this event; read them once it has.
    clearTimeout(filterTimer);
    setTimeout(() => {
      state.q = fSearch.value.trim().toLowerCase();
      goTo(0);
    });
  });
  fStatus.addEventListener('change', () => goTo(0));
  fFind.addEventListener('input', () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => goTo(0), 300);
  });
  fFind.addEventListener('change', () => { clearTimeout(filterTimer); if (readFilters()) goTo(0); });
  fSearch.addEventListener('input', () => { state.q = fSearch.value.trim().toLowerCase(); applySearch(); });
  pageSize.addEventListener('change', () => {
    state.limit = Number(pageSize.value) || 100;
    try { localStorage.setItem(PAGE_SIZE_KEY, String(state.limit)); } catch { /* storage unavailable */ }
    goTo(0);
  });
  newer.addEventListener('click', () => goTo(Math.max(0, state.offset - state.limit)));
  older.addEventListener('click', () => goTo(state.offset + state.limit));
  bannerButton.addEventListener('click', () => goTo(0));

  /** Copies the filter fields into the state; true when they changed. */
  function readFilters() {
    const next = { status: fStatus.value, find: fFind.value.trim() };
    const changed = next.status !== state.status || next.find !== state.find;
    Object.assign(state, next);
    return changed;
  }

  /** Loads the page at `offset` with the current filter fields. */
  function goTo(offset) {
    clearTimeout(filterTimer);
    readFilters();
    state.offset = offset;
    state.newElsewhere = 0;
    banner.hidden = true;
    return load({ clear: true });
  }

  /** Shows only pending approvals (the header counter links here). */
  function showPending() {
    fStatus.value = 'pending_approval';
    return goTo(0);
  }

  // ---- loading and rendering -----------------------------------------------------------
  /** Reads the current page from the server and reconciles the table with it. */
  async function load({ clear = false } = {}) {
    loadController?.abort();
    const controller = new AbortController();
    loadController = controller;
    if (clear) body.setAttribute('aria-busy', 'true');
    const q = query({ limit: state.limit, offset: state.offset, status: state.status, q: state.find });
    let list;
    const seq = beginRequest();
    try {
      list = await api(`/v1/actions${q}`, { signal: controller.signal });
      if (controller !== loadController) return;
      performance.mark('faramesh:list-fetched');
      loadController = null;
      state.loaded = true;
      state.lastCount = list.length;
      render(list, seq);
    } catch (err) {
      if (err?.name === 'AbortError') return;
      if (err?.status === 422 && state.find) {
        // A search the server cannot list (too broad, too long): say why instead of stale rows.
        state.lastCount = 0;
        render([], seq);
        showEmpty(err.detail);
        return;
      }
      if (!state.loaded) showEmpty(`Could not load actions: ${err.detail ?? err}`);
      else notify(`Could not refresh the actions: ${err.detail ?? err}`);
    } finally {
      endRequest();
      if (controller === loadController || loadController === null) body.removeAttribute('aria-busy');
    }
  }

  function render(list, seq) {
    performance.mark('faramesh:render-start');
    const wanted = new Set(list.map((a) => a.id));
    for (const [id, entry] of rows) {
      if (!wanted.has(id)) { entry.tr.remove(); rows.delete(id); store.forget(id); }
    }
    const ordered = list.map((action) => {
      let merged;
      if (staleSince(action.id, seq) && store.hasAction(action.id)) {
        merged = store.getAction(action.id);
        queueFetch(action.id);
      } else {
        merged = store.upsert(action);
      }
      let entry = rows.get(action.id);
      if (!entry) {
        entry = createRow(merged);
        rows.set(action.id, entry);
      }
      return entry;
    });
    if (!body.firstChild) {
      const fragment = document.createDocumentFragment();
      for (const entry of ordered) fragment.append(entry.tr);
      body.append(fragment);
    } else {
      let cursor = body.firstChild;
      for (const entry of ordered) {
        if (entry.tr === cursor) cursor = cursor.nextSibling;
        else body.insertBefore(entry.tr, cursor);
      }
    }
    performance.mark('faramesh:render-end');
    applySearch();
    updatePager();
  }

  function rowTemplate() {
    const tr = document.createElement('tr');
    for (const [cls, label] of [
      ['c-id', 'Action'], ['c-status', 'Status'], ['c-risk', 'Risk'], ['c-agent', 'Agent'],
      ['c-tool', 'Tool'], ['c-op', 'Operation'], ['c-params', 'Params'], ['c-age', 'Age'], ['c-decide', 'Decide'],
    ]) {
      const td = document.createElement('td');
      td.className = cls;
      td.dataset.label = label;
      tr.append(td);
    }
    const idButton = document.createElement('button');
    idButton.type = 'button';
    idButton.className = 'link-btn mono';
    tr.cells[0].append(idButton);
    const params = document.createElement('code');
    params.className = 'params-text';
    const why = document.createElement('span');
    why.className = 'inbox-why';
    why.hidden = true;
    tr.cells[6].append(params, why);
    tr.cells[7].append(document.createElement('time'));
    return tr;
  }

  function createRow(action) {
    const tr = template.cloneNode(true);
    const c = tr.cells;
    const entry = {
      tr,
      action,
      idButton: c[0].firstChild,
      status: c[1], risk: c[2], agent: c[3], tool: c[4], op: c[5],
      params: c[6].firstChild, why: c[6].lastChild, time: c[7].firstChild, decide: c[8],
      decideForm: null, shown: {}, haystack: null,
    };
    tr.dataset.id = action.id;
    fillRow(entry, action);
    return entry;
  }

  function fillRow(entry, a) {
    const s = entry.shown;
    entry.action = a;
    if (s.id !== a.id) {
      entry.idButton.textContent = shortId(a.id);
      entry.idButton.setAttribute('aria-label', `Details of action ${shortId(a.id)}`);
      entry.idButton.title = a.id;
      s.id = a.id;
    }
    // Under an approval rule, a pending action also shows how many approvals it has.
    const progress = a.status === 'pending_approval' ? approvalsText(a) : null;
    if (s.status !== a.status || s.progress !== progress) {
      entry.status.replaceChildren(pill('status', a.status));
      if (progress) entry.status.append(' ', h('span', { class: 'approvals-count', text: progress }));
      entry.tr.dataset.status = a.status;
      s.status = a.status; s.progress = progress;
    }
    if (s.risk !== a.risk_level) {
      entry.risk.replaceChildren(pill('risk', a.risk_level));
      s.risk = a.risk_level;
    }
    if (s.agent !== a.agent_id || s.demo !== a.demo) {
      entry.agent.replaceChildren(document.createTextNode(a.agent_id ?? ''));
      if (a.demo) entry.agent.append(' ', h('span', { class: 'badge badge-demo', text: 'demo' }));
      s.agent = a.agent_id; s.demo = a.demo;
    }
    const isMcp = Boolean(mcpOf(a));
    if (s.tool !== a.tool || s.mcp !== isMcp) {
      entry.tool.replaceChildren(document.createTextNode(a.tool ?? ''));
      if (isMcp) entry.tool.append(' ', h('span', { class: 'badge badge-mcp', text: 'MCP', title: 'A tool call through the MCP gateway' }));
      s.tool = a.tool; s.mcp = isMcp;
    }
    if (s.op !== a.operation) { entry.op.textContent = a.operation ?? ''; s.op = a.operation; }
    // A pending row shows everything that will run, wrapped; other rows a one-line preview.
    const inbox = a.status === 'pending_approval';
    if (s.inbox !== inbox) { entry.tr.classList.toggle('inbox', inbox); }
    if (a.params !== undefined && (s.params !== a.params || s.inbox !== inbox)) {
      if (inbox) {
        entry.params.textContent = preview(a.params, Infinity);
        entry.params.removeAttribute('title');
      } else {
        const text = preview(a.params, 400);
        entry.params.textContent = text.length > 100 ? `${text.slice(0, 99)}…` : text;
        entry.params.title = text;
      }
      s.params = a.params;
    }
    const why = inbox && a.reason ? String(a.reason) : '';
    if (s.why !== why) { entry.why.textContent = why; entry.why.hidden = !why; s.why = why; }
    if (a.created_at && (s.created !== a.created_at || s.inbox !== inbox)) {
      entry.time.dateTime = a.created_at;
      entry.time.title = localTime(a.created_at);
      entry.time.textContent = ageText(a);
      s.created = a.created_at;
    }
    s.inbox = inbox;
    const canDecide = a.status === 'pending_approval' && Boolean(a.approval_token);
    if (canDecide && !entry.decideForm) {
      entry.decideForm = decideControls(entry);
      entry.decide.replaceChildren(entry.decideForm);
    } else if (!canDecide && entry.decideForm) {
      const hadFocus = entry.decideForm.contains(document.activeElement);
      entry.decideForm = null;
      entry.decide.replaceChildren();
      if (hadFocus) entry.idButton.focus();
    }
    entry.haystack = null;
  }

  /** Reason field and Approve/Deny buttons of a pending row (events are delegated below). */
  function decideControls(entry) {
    const label = `${entry.action.tool} ${entry.action.operation} ${shortId(entry.action.id)}`;
    const controls = decideTemplate.cloneNode(true);
    const [reason, approve, deny] = controls.children;
    reason.setAttribute('aria-label', `Reason for ${label} (optional)`);
    approve.setAttribute('aria-label', `Approve ${label}`);
    deny.setAttribute('aria-label', `Deny ${label}`);
    return controls;
  }

  async function decideFromRow(entry, approve) {
    const controls = entry.decideForm;
    const [reason, ...buttons] = controls.children;
    buttons.forEach((b) => { b.disabled = true; });
    try {
      await store.decide(entry.action.id, approve, reason.value);
      reason.value = '';
    } catch (err) {
      notify(err.detail ?? String(err));
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  function haystack(entry) {
    if (entry.haystack === null) {
      const a = entry.action;
      let params = '';
      try { params = JSON.stringify(a.params ?? {}) + JSON.stringify(a.context ?? {}); } catch { /* unreachable for parsed JSON */ }
      entry.haystack = [a.id, a.agent_id, a.tool, a.operation, a.status, a.risk_level, a.reason, a.decision, params]
        .join('\u0000').toLowerCase();
    }
    return entry.haystack;
  }

  function applySearch() {
    let visible = 0;
    for (const entry of rows.values()) {
      const show = !state.q || haystack(entry).includes(state.q);
      if (entry.tr.hidden === show) entry.tr.hidden = !show;
      if (show) visible += 1;
    }
    searchCount.textContent = state.q ? `${visible} of ${rows.size} on this page match` : '';
    if (rows.size === 0) {
      const filtered = state.status || state.find;
      showEmpty(state.offset > 0 ? 'No more actions.'
        : filtered ? 'No actions match these filters.'
          : 'No actions yet. Agents submit them with POST /v1/actions; they appear here as they arrive.');
    } else if (visible === 0) {
      showEmpty('No action on this page matches the search.');
    } else {
      emptyNote.hidden = true;
    }
  }

  function showEmpty(text) {
    emptyNote.textContent = text;
    emptyNote.hidden = false;
  }

  function updatePager() {
    newer.disabled = state.offset === 0;
    older.disabled = state.lastCount < state.limit;
    const n = rows.size;
    pageInfo.textContent = n === 0 ? 'No actions' : `Actions ${state.offset + 1}–${state.offset + n}, newest first`;
  }

  // ---- live updates --------------------------------------------------------------------
  store.subscribe((action) => {
    const entry = rows.get(action.id);
    if (entry) {
      fillRow(entry, action);
      if (state.q) applySearch();
    }
  });

  function matchesFilters(d) {
    const find = state.find.toLowerCase();
    const named = (name) => typeof name === 'string' && name.toLowerCase().includes(find);
    return (!state.status || d.status === state.status)
      && (!find || named(d.agent_id) || named(d.tool) || named(d.operation));
  }

  /** Applies one stream message: patch a row on the page, or fetch an action that now belongs here. */
  function applyMessage(message) {
    const d = message?.data;
    if (!d || typeof d.id !== 'string') return;
    liveSeq += 1;
    if (inFlight) touched.set(d.id, liveSeq);
    store.applyLive(d);
    // The stream carries no approvals: an action under an approval rule is re-read for its count.
    if (rows.has(d.id) && hasQuorum(store.getAction(d.id))) queueFetch(d.id);
    if (rows.has(d.id) || !state.loaded || !matchesFilters(d)) return;
    if (state.offset > 0) {
      if (message.type === 'action.created') {
        state.newElsewhere += 1;
        bannerButton.textContent = `${state.newElsewhere} new — show newest`;
        banner.hidden = false;
      }
      return;
    }
    queueFetch(d.id);
  }

  function queueFetch(id) {
    fetchQueue.add(id);
    if (!fetchTimer) fetchTimer = setTimeout(flushFetches, 30);
  }

  async function flushFetches() {
    fetchTimer = null;
    const ids = [...fetchQueue];
    fetchQueue = new Set();
    if (ids.length > MAX_SINGLE_FETCHES) { await load(); return; }
    const seq = beginRequest();
    try {
      const results = await Promise.allSettled(ids.map((id) => api(`/v1/actions/${encodeURIComponent(id)}`)));
      const fresh = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
      const stale = fresh.filter((a) => staleSince(a.id, seq));
      stale.forEach((a) => queueFetch(a.id));
      insertSorted(fresh.filter((a) => !stale.includes(a) || !store.hasAction(a.id)));
    } finally {
      endRequest();
    }
  }

  /**
   * Records re-read actions that are on the page, and inserts new ones at their place (newest
   * first) on page one, keeping at most `limit` rows.
   */
  function insertSorted(actions) {
    actions.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    let changed = false;
    for (const action of actions) {
      if (rows.has(action.id)) { store.upsert(action); continue; }
      if (state.offset > 0 || !matchesFilters(action)) continue;
      const last = body.lastElementChild;
      const full = rows.size >= state.limit;
      if (full && last && rows.get(last.dataset.id)?.action.created_at > action.created_at) continue;
      const entry = createRow(store.upsert(action));
      rows.set(action.id, entry);
      let before = body.firstElementChild;
      while (before && rows.get(before.dataset.id)?.action.created_at > action.created_at) before = before.nextElementSibling;
      body.insertBefore(entry.tr, before);
      changed = true;
    }
    while (rows.size > state.limit) {
      const last = body.lastElementChild;
      rows.delete(last.dataset.id);
      store.forget(last.dataset.id);
      last.remove();
    }
    if (changed) {
      state.lastCount = Math.max(state.lastCount, Math.min(rows.size, state.limit));
      applySearch();
      updatePager();
    }
  }

  // ---- row interaction -----------------------------------------------------------------
  body.addEventListener('click', (event) => {
    const tr = event.target.closest('tr');
    if (!tr) return;
    const decision = event.target.closest('button[data-decide]');
    if (decision) {
      const entry = rows.get(tr.dataset.id);
      if (entry?.decideForm) decideFromRow(entry, decision.dataset.decide === 'approve');
      return;
    }
    const control = event.target.closest('button, input, a, select, textarea');
    if (control && !control.classList.contains('link-btn')) return;
    if (!control && String(window.getSelection?.() ?? '')) return; // selecting text, not opening
    openDrawer(tr.dataset.id, control ?? tr.cells[0].firstChild);
  });

  // Enter in a row's reason field moves to its Approve button (one more Enter approves).
  body.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || !event.target.classList.contains('reason-input')) return;
    event.preventDefault();
    event.target.nextElementSibling?.focus();
  });

  // ---- keyboard: j/k select a row, a/d approve/deny it, Enter opens it -------------------
  let selectedId = null;

  function currentEntry() {
    const tr = document.activeElement?.closest?.('#actions-body tr');
    return (tr && rows.get(tr.dataset.id)) ?? (selectedId ? rows.get(selectedId) : null) ?? null;
  }

  function select(entry) {
    const previous = selectedId ? rows.get(selectedId) : null;
    if (previous && previous !== entry) {
      previous.tr.classList.remove('selected');
      previous.tr.removeAttribute('aria-current');
      previous.tr.removeAttribute('tabindex');
    }
    selectedId = entry.action.id;
    entry.tr.classList.add('selected');
    entry.tr.setAttribute('aria-current', 'true');
    entry.tr.tabIndex = -1;
    entry.tr.focus();
    entry.tr.scrollIntoView({ block: 'nearest' });
  }

  function move(step) {
    const visible = [...body.children].filter((tr) => !tr.hidden);
    if (!visible.length) return;
    const at = visible.indexOf(currentEntry()?.tr);
    const next = at < 0 ? 0 : Math.min(visible.length - 1, Math.max(0, at + step));
    select(rows.get(visible[next].dataset.id));
  }

  async function decideByKey(approve) {
    const entry = currentEntry();
    if (!entry) return;
    if (!entry.decideForm) {
      notify(`Action ${shortId(entry.action.id)} is not waiting for a decision.`);
      return;
    }
    if (entry.action.risk_level === 'high' && !(await confirmDecision(entry.action, approve))) return;
    if (!entry.decideForm || !rows.has(entry.action.id)) return;
    await decideFromRow(entry, approve);
  }

  function typing(target) {
    return Boolean(target?.closest?.('input, textarea, select, [contenteditable=""], [contenteditable="true"]'));
  }

  document.addEventListener('keydown', (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if ($('#view-actions').hidden || document.body.classList.contains('drawer-open') || document.querySelector('dialog[open]')) return;
    if (typing(event.target)) return;
    switch (event.key) {
      case 'j': event.preventDefault(); move(1); break;
      case 'k': event.preventDefault(); move(-1); break;
      case 'a': event.preventDefault(); decideByKey(true); break;
      case 'd': event.preventDefault(); decideByKey(false); break;
      case 'Enter': {
        const entry = rows.get(event.target?.dataset?.id);
        if (entry && event.target === entry.tr) { event.preventDefault(); openDrawer(entry.action.id, entry.idButton); }
        break;
      }
      default:
    }
  });

  // Ages tick without re-reading the server.
  setInterval(() => {
    const now = Date.now();
    for (const entry of rows.values()) {
      const text = ageText(entry.action, now);
      if (entry.time.textContent !== text) entry.time.textContent = text;
    }
  }, 15000);

  return {
    load,
    goTo,
    showPending,
    applyMessage,
    /** The row's "details" button of an action, to return focus to when the drawer closes. */
    focusTarget: (id) => rows.get(id)?.idButton ?? null,
    rowCount: () => rows.size,
    isLoaded: () => state.loaded,
  };
}

/** How old an action is; a pending one says how long it has been waiting. */
function ageText(a, now = Date.now()) {
  const text = age(a.created_at, now);
  return a.status === 'pending_approval' ? `waiting ${text}` : text;
}

function readPageSize() {
  let stored = NaN;
  try { stored = Number(localStorage.getItem(PAGE_SIZE_KEY)); } catch { /* storage unavailable */ }
  return PAGE_SIZES.includes(stored) ? stored : 100;
}
