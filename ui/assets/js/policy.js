// The policy view: the active policy, read-only (file, version, hash, rules, risk rules),
// and a playground that decides a hand-written action with POST /v1/gate/decide (nothing
// is stored).

import { api } from './api.js';
import { $, h, localTime, pill, pretty, replace } from './dom.js';

const EFFECTS = ['allow', 'deny', 'require_approval'];

export function createPolicyView() {
  const info = $('#policy-info');
  const rulesBody = $('#policy-rules');
  const riskBody = $('#policy-risk-rules');
  const reload = $('#policy-refresh');
  const form = $('#playground');
  const result = $('#playground-result');
  let loaded = false;

  reload.addEventListener('click', () => load());
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
    const rules = Array.isArray(p.rules) ? p.rules : [];
    replace(rulesBody, rules.length ? rules.map((rule, i) => ruleRow(rule, i)) : h('tr', {}, h('td', { colspan: '5', text: 'No rules: every action is denied.' })));
    const riskRules = Array.isArray(p.risk_rules) ? p.risk_rules : [];
    replace(riskBody, riskRules.length ? riskRules.map((r) => h('tr', {},
      h('td', { 'data-label': 'Name', text: String(r.name ?? '—') }),
      h('td', { 'data-label': 'When' }, conditions(r.when)),
      h('td', { 'data-label': 'Risk' }, pill('risk', r.risk_level))))
      : h('tr', {}, h('td', { colspan: '3', text: 'No risk rules: computed risk is low.' })));
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
    show() { if (!loaded) load(); },
    load,
  };
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
