// Whether an action's events are in the ledger's signed Merkle log, checked here in the browser
// with WebCrypto: the latest checkpoint's Ed25519 signature against the server's verifier key
// (GET /v1/log/key), then each event's inclusion proof (RFC 9162 §2.1.3.2) against the
// checkpoint's root. The key comes from the same server, so this shows the server agrees with
// itself; `faramesh log prove --key <your copy>` checks against a key you hold.

import { apiText, api, query } from './api.js';

const encoder = new TextEncoder();

function fromBase64(text) {
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

function fromHex(text) {
  if (!/^([0-9a-f]{2})*$/.test(text)) throw new Error(`not hex: ${text.slice(0, 16)}`);
  return Uint8Array.from(text.match(/../g) ?? [], (b) => parseInt(b, 16));
}

function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

async function sha256(...parts) {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { all.set(p, at); at += p.length; }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', all));
}

const ZERO = Uint8Array.of(0);
const ONE = Uint8Array.of(1);

/** The verifier key `<name>+<hex key id>+<base64(0x01 ‖ public key)>`. */
function parseKey(text) {
  // The base64 key may itself hold '+': split off the first two fields only.
  const [name, id, ...rest] = text.trim().split('+');
  const key = rest.join('+');
  const raw = fromBase64(key ?? '');
  if (!name || !id || raw.length !== 33 || raw[0] !== 1) throw new Error('the server\'s verifier key cannot be read');
  return { name, id: fromHex(id), publicKey: raw.slice(1) };
}

/** Checks the note's signature by `key`; returns the checkpoint it signs. */
async function openCheckpoint(note, key) {
  const split = note.indexOf('\n\n');
  if (split < 0) throw new Error('the checkpoint is not a signed note');
  const text = note.slice(0, split + 1);
  const prefix = `— ${key.name} `;
  const line = note.slice(split + 2).split('\n').find((l) => l.startsWith(prefix));
  if (!line) throw new Error(`the checkpoint has no signature by ${key.name}`);
  const signed = fromBase64(line.slice(prefix.length));
  if (!equal(signed.slice(0, 4), key.id)) throw new Error('the checkpoint was signed by another key');
  const publicKey = await crypto.subtle.importKey('raw', key.publicKey, { name: 'Ed25519' }, false, ['verify']);
  const ok = await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, signed.slice(4), encoder.encode(text));
  if (!ok) throw new Error('the checkpoint\'s signature does not verify');
  const [origin, size, root] = text.split('\n');
  return { origin, size: Number(size), root: fromBase64(root) };
}

/** RFC 9162 §2.1.3.2: does `path` lead from `leaf` at `index` to `root` in a tree of `size`? */
async function included(index, size, leaf, path, root) {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(ONE, p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = await sha256(ONE, r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

/** The latest checkpoint, its signature checked: `{origin, size, root}`. Throws on a problem. */
export async function latestCheckpoint() {
  const [keyText, note] = await Promise.all([apiText('/v1/log/key'), apiText('/v1/log/checkpoint')]);
  return openCheckpoint(note, parseKey(keyText));
}

/**
 * Whether every event is in the latest signed checkpoint:
 * `{verified: true, size}`, `{pending: true, size}` (a newer event is not covered yet) or
 * `{problem}`.
 */
export async function proveIncluded(events) {
  if (!globalThis.crypto?.subtle) return { problem: 'this page is not a secure context (https or localhost), so it cannot check hashes' };
  let checkpoint;
  try {
    checkpoint = await latestCheckpoint();
  } catch (err) {
    return { problem: err?.detail ?? err?.message ?? String(err) };
  }
  for (const e of events) {
    if (typeof e.log_index !== 'number') return { problem: `event ${e.event_type} is not in the log` };
    if (e.log_index >= checkpoint.size) return { pending: true, size: checkpoint.size };
    const proof = await api(`/v1/log/proof/inclusion${query({ index: e.log_index, size: checkpoint.size })}`);
    const leaf = await sha256(ZERO, fromHex(e.record_hash));
    const ok = await included(e.log_index, checkpoint.size, leaf, proof.hashes.map(fromHex), checkpoint.root);
    if (!ok) return { problem: `event ${e.event_type} (log_index ${e.log_index}) is not in checkpoint ${checkpoint.size}` };
  }
  return { verified: true, size: checkpoint.size };
}
