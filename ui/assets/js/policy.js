// The policy view: the active policy, read-only (file, version, hash, rules, risk rules),
// its limits with their usage now (GET /v1/limits, read when the view opens and on Refresh;
// nothing polls), and a playground that decides a hand-written action with
// POST /v1/gate/decide (nothing is stored).

import { api } from './api.js';
import { $, formatNumber, h, localTime, pill, pretty, replace } from './dom.js';

const EFFECTS = ['allow', 'deny', 'require_approval'];
// What happens to an action over a limit, in words, and its colour.
const ON_EXCEED = {
  deny: ['then denied', 'bad'],
  require_approval: ['then a human decides', 'warn'],
};
// Share of a limit from which a key's usage is shown as close to it.
const NEAR = 0.8;
// Most keys GET /v1/limits lists per limit.
const KEYS_SHOWN = 100;

export function createPolicyView() {
  const info = $('#policy-info');
  const profileBox = $('#policy-profile');
  const rulesBody = $('#policy-rules');
  const riskBody = $('#policy-risk-rules');
  const reload = $('#policy-refresh');
  const limitsBox = $('#policy-limits');
  const limitsError = $('#limits-error');
  const limitsRefresh = $('#limits-refresh');
  const form = $('#playground');
  const result = $('#playground-result');
  let loaded = false;
  let limitsSeq = 0;
  let limitsShown = false;

  reload.addEventListener('click', () => { load(); loadLimits(); });
  limitsRefresh.addEventListener('click', () => loadLimits());
  form.addEventListener('submit', (event) => { event.preventDefault(); decide(); });

  async function load() {
    replace(info, h('p', { class: 'muted', text: 'Loading the active policy…' }));
    let p;
    try {
      p = await api('/v1/policy/info');
    } catch (err) {
      replace(info, h('p', { class: 'error', role: 'alert', text: `Could not load the policy: ${err.detail ?? err}` }));
      return;
    }
    loaded = true;
    replace(info, h('dl', { class: 'fields' },
      field('File', p.policy_file),
      field('Path', p.policy_path, 'wrap'),
      field('Version', p.policy_version, 'mono wrap'),
      field('Hash', p.policy_hash, 'mono wrap'),
      field('Loaded', p.loaded_at ? localTime(p.loaded_at) : null),
      p.exists === false ? field('Note', 'The policy file does not exist: every action is denied.') : null));
    replace(profileBox, profileView(p.profile));
    const rules = Array.isArray(p.rules) ? p.rules : [];
    replace(rulesBody, rules.length ? rules.map((rule, i) => ruleRow(rule, i)) : h('tr', {}, h('td', { colspan: '5', text: 'No rules: every action is denied.' })));
    const riskRules = Array.isArray(p.risk_rules) ? p.risk_rules : [];
    replace(riskBody, riskRules.length ? riskRules.map((r) => h('tr', {},
      h('td', { 'data-label': 'Name', text: String(r.name ?? '—') }),
      h('td', { 'data-label': 'When' }, conditions(r.when)),
      h('td', { 'data-label': 'Risk' }, pill('risk', r.risk_level))))
      : h('tr', {}, h('td', { colspan: '3', text: 'No risk rules: computed risk is low.' })));
  }

  /** Reads the policy's limits and their usage now. */
  async function loadLimits() {
    const seq = ++limitsSeq;
    if (!limitsShown) replace(limitsBox, h('p', { class: 'muted', text: 'Loading the limits…' }));
    limitsBox.setAttribute('aria-busy', 'true');
    let answer;
    try {
      answer = await api('/v1/limits');
    } catch (err) {
      if (seq !== limitsSeq) return;
      limitsBox.removeAttribute('aria-busy');
      // What was shown before stays (a failed refresh), but not the loading note.
      if (!limitsShown) replace(limitsBox);
      limitsError.textContent = `Could not load the limits: ${err.detail ?? err}`;
      limitsError.hidden = false;
      return;
    }
    if (seq !== limitsSeq) return;
    limitsBox.removeAttribute('aria-busy');
    limitsError.hidden = true;
    limitsShown = true;
    const limits = Array.isArray(answer?.limits) ? answer.limits : [];
    if (!limits.length) {
      replace(limitsBox, h('p', { class: 'limits-none' },
        'The policy has no limits: add ', h('code', { text: 'limits:' }),
        ' to it to cap how often or how much agents may act (see ', h('code', { text: 'docs/policies.md#limits' }), ').'));
      return;
    }
    replace(limitsBox, limits.map((limit, i) => limitSection(limit, i)));
  }

  function ruleRow(rule, i) {
    const effect = EFFECTS.find((e) => rule[e] === true) ?? (rule.effect ?? rule.decision ?? '—');
    const tone = { allow: 'ok', deny: 'bad', require_approval: 'warn' }[effect] ?? 'neutral';
    const match = rule.match ?? {};
    const tryButton = h('button', {
      type: 'button', class: 'btn btn-small', text: 'Try',
      'aria-label': `Try rule ${i + 1} in the playground`,
      on: { click: () => {
        const tool = match.tool && match.tool !== '*' ? match.tool : 'example';
        const op = match.op ?? match.operation;
        $('#pg-tool').value = tool;
        $('#pg-operation').value = op && op !== '*' ? op : 'run';
        $('#pg-tool').focus();
      } },
    });
    const extra = Object.fromEntries(Object.entries(rule).filter(([k]) => !['match', 'description', 'risk', ...EFFECTS].includes(k)));
    return h('tr', {},
      h('td', { 'data-label': 'Rule', text: String(i + 1) }),
      h('td', { 'data-label': 'Match' }, conditions(match), Object.keys(extra).length ? h('pre', { class: 'code', text: pretty(extra) }) : null),
      h('td', { 'data-label': 'Effect' }, h('span', { class: `pill tone-${tone}`, text: String(effect) })),
      h('td', { 'data-label': 'Description', text: String(rule.description ?? '—') }),
      h('td', { 'data-label': 'Risk' }, rule.risk ? pill('risk', rule.risk) : '—', ' ', tryButton));
  }

  async function decide() {
    const read = (id) => $(id).value;
    let params;
    let context;
    try { params = JSON.parse(read('#pg-params') || '{}'); } catch (err) { return showError(`Params is not valid JSON: ${err.message}`); }
    try { context = JSON.parse(read('#pg-context') || '{}'); } catch (err) { return showError(`Context is not valid JSON: ${err.message}`); }
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    replace(result, h('p', { class: 'muted', text: 'Deciding…' }));
    try {
      const d = await api('/v1/gate/decide', {
        method: 'POST',
        body: { agent_id: read('#pg-agent'), tool: read('#pg-tool'), operation: read('#pg-operation'), params, context },
      });
      const tone = { EXECUTE: 'ok', HALT: 'bad', ABSTAIN: 'warn' }[d.outcome] ?? 'neutral';
      const word = { EXECUTE: 'allow', HALT: 'deny', ABSTAIN: 'require_approval' }[d.outcome] ?? d.decision ?? d.outcome;
      replace(result,
        h('p', { class: 'decision-line' },
          h('span', { class: `pill pill-large tone-${tone}`, text: `${d.outcome} · ${d.decision ?? word}` }), ' ', pill('risk', d.risk_level)),
        h('dl', { class: 'fields' },
          field('Reason', d.reason),
          field('Reason code', d.reason_code),
          field('Policy version', d.policy_version, 'mono wrap'),
          field('Request hash', d.request_hash, 'mono wrap'),
          field('Policy hash', d.policy_hash, 'mono wrap'),
          field('Provenance id', d.provenance_id, 'mono wrap')),
        h('p', { class: 'muted', text: 'Nothing was stored: the playground only asks the policy.' }));
    } catch (err) {
      showError(`The server refused the action: ${err.detail ?? err}`);
    } finally {
      submit.disabled = false;
    }
  }

  function showError(text) {
    replace(result, h('p', { class: 'error', role: 'alert', text }));
  }

  return {
    /** Shows the view: the policy is read once (or on Reload view), its limits' usage each time. */
    show() {
      if (!loaded) load();
      loadLimits();
    },
    load,
  };
}

/** One limit: its name, what it counts, what happens over it, and its usage by key. */
function limitSection(limit, i) {
  const name = String(limit.name ?? '?');
  const id = `limit-h-${i}`;
  const [then, tone] = ON_EXCEED[limit.on_exceed] ?? [`then ${limit.on_exceed ?? '?'}`, 'neutral'];
  const usage = Array.isArray(limit.usage) ? limit.usage : [];
  return h('section', { class: 'limit', 'aria-labelledby': id, dataset: { limit: name } },
    h('h3', { id, class: 'limit-name mono', text: name }),
    h('p', { class: 'limit-what' },
      h('span', { text: limitText(limit) }), ' ',
      h('span', { class: `pill tone-${tone}`, text: then })),
    usage.length
      ? h('div', { class: 'table-wrap' },
        h('table', { class: 'plain limit-usage', 'aria-labelledby': id },
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', text: 'Key' }),
            h('th', { scope: 'col', text: 'Used' }),
            h('th', { scope: 'col', text: 'Calls' }),
            h('th', { scope: 'col', text: 'Usage' }))),
          h('tbody', {}, usage.map((u) => usageRow(limit, u)))))
      : h('p', { class: 'muted limit-empty', text: 'No usage in the window' }),
    usage.length >= KEYS_SHOWN ? h('p', { class: 'muted', text: `The ${KEYS_SHOWN} most used keys.` }) : null);
}

/** "20 calls per 1h, per agent_id" or "sum of params.amount up to 5000 per 24h, per agent_id". */
function limitText(limit) {
  const span = String(limit.window ?? '?');
  const per = limit.per === 'global' ? 'all actions together' : `per ${limit.per ?? 'agent_id'}`;
  if (limit.sum) return `sum of ${limit.sum} up to ${formatNumber(limit.max)} per ${span}, ${per}`;
  const calls = limit.max_calls ?? limit.max;
  return `${formatNumber(calls)} call${Number(calls) === 1 ? '' : 's'} per ${span}, ${per}`;
}

/** A key's usage: "12 of 20", its calls, and a bar marked when close to or at the limit. */
function usageRow(limit, u) {
  const used = Number(u.used) || 0;
  const max = Number(limit.max) || 0;
  const level = used > max ? 'over' : used >= max ? 'full' : used >= max * NEAR ? 'near' : 'ok';
  const ofMax = `${formatNumber(used)} of ${formatNumber(max)}`;
  const key = String(u.key ?? '?');
  return h('tr', { class: `usage-${level}`, dataset: { usageKey: key, level } },
    h('td', { 'data-label': 'Key', class: 'mono wrap', text: key }),
    h('td', { 'data-label': 'Used', class: 'limit-used' },
      h('span', { text: ofMax }),
      level === 'full' || level === 'over' ? [' ', h('span', { class: 'pill tone-bad', text: level })] : null),
    h('td', { 'data-label': 'Calls', text: formatNumber(u.calls ?? 0) }),
    h('td', { 'data-label': 'Usage', class: 'limit-bar' },
      h('meter', {
        class: `usage-meter usage-${level}`, min: '0', max: String(max), value: String(used),
        'aria-label': `${String(limit.name ?? '?')} usage of ${key}: ${ofMax}${level === 'full' || level === 'over' ? ` (${level})` : ''}`,
      })));
}

/** The execution profile beside the policy, so a HALT by one of its rules has a visible rule. */
function profileView(profile) {
  if (!profile || typeof profile !== 'object') {
    return h('p', { class: 'muted', text: 'No execution profile is loaded: the policy alone decides.' });
  }
  const tools = Array.isArray(profile.allowed_tools) ? profile.allowed_tools.map(String) : [];
  const rules = Array.isArray(profile.rules) ? profile.rules : [];
  return h('div', {},
    h('dl', { class: 'fields' },
      field('File', profile.file),
      field('Id', profile.id),
      field('Version', profile.version),
      field('Hash', profile.profile_hash, 'mono wrap'),
      field('Allowed tools', tools.length ? tools.join(', ') : 'none: every action is halted'),
      field('Approval token', profile.approval_token_required ? 'required in params or context' : 'not required')),
    rules.length
      ? h('ol', { class: 'profile-rules', 'aria-label': 'Profile rules' },
        rules.map((rule) => h('li', {}, h('pre', { class: 'code', text: pretty(rule) }))))
      : h('p', { class: 'muted', text: 'The profile has no rules.' }));
}

function field(label, value, cls) {
  return [h('dt', { text: label }), h('dd', { class: cls ?? null, text: value === null || value === undefined || value === '' ? '—' : String(value) })];
}

function conditions(obj) {
  if (!obj || typeof obj !== 'object') return h('span', { text: '—' });
  return h('ul', { class: 'conditions' }, Object.entries(obj).map(([k, v]) => h('li', {},
    h('span', { class: 'cond-key', text: `${k}: ` }),
    h('code', { text: typeof v === 'string' ? v : JSON.stringify(v) }))));
}
