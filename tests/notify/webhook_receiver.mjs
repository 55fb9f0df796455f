// A webhook receiver for tests: checks Faramesh's X-Faramesh-Signature and records each request.
// The same receiver and command line as webhook_receiver.py, in Node (stdlib only):
//
//   WEBHOOK_SECRET=... node tests/notify/webhook_receiver.mjs --out FILE [--port N]
//       [--fail-first N] [--secret-env NAME]
//
// Prints `listening on http://127.0.0.1:<port>` once it accepts requests.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

// The reference check, meant to be copied on its own: it needs only node:crypto.
// Whether `header` (the X-Faramesh-Signature value) signs `body` (the raw request body, a Buffer).
function verifySignature(secret, header, body, tolerance = 300, now = Date.now() / 1000) {
  // The header reads "t=<unix seconds>,v1=<hex>[,v1=<hex>...]": one v1 per secret in use,
  // several while a secret is being rotated. Unknown keys are ignored (future schemes).
  let timestamp = null;
  const signatures = [];
  for (const part of header.split(',')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === 't') timestamp = rest.join('=');
    else if (key === 'v1') signatures.push(rest.join('='));
  }
  if (timestamp === null || !/^[0-9]{1,12}$/.test(timestamp) || signatures.length === 0) {
    return false;
  }
  // A signature is only good for `tolerance` seconds either way: a replayed request goes stale.
  if (Math.abs(now - Number(timestamp)) > tolerance) return false;
  // The signed message is "<t>.<body>" over the exact bytes received: never re-serialised JSON.
  const hmac = crypto.createHmac('sha256', secret).update(`${timestamp}.`).update(body);
  const expected = Buffer.from(hmac.digest('hex'));
  // Any v1 may match. timingSafeEqual takes the same time wherever the bytes differ, but throws
  // on a length mismatch, so a v1 of the wrong length is refused before it.
  return signatures.some((sig) => {
    const given = Buffer.from(sig);
    return given.length === expected.length && crypto.timingSafeEqual(given, expected);
  });
}

function usage(message) {
  console.error(`webhook_receiver.mjs: ${message}`);
  console.error('usage: node webhook_receiver.mjs --out FILE [--port N] [--fail-first N]'
    + ' [--secret-env NAME]');
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      port: { type: 'string', default: '0' }, // 0: a free port
      out: { type: 'string' }, // append one JSON line per request here
      'fail-first': { type: 'string', default: '0' }, // 503 to the first N validly signed requests
      'secret-env': { type: 'string', default: 'WEBHOOK_SECRET' },
    },
  }).values;
} catch (error) {
  usage(error.message);
}
const port = Number(args.port);
let failLeft = Number(args['fail-first']);
if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`bad --port ${args.port}`);
if (!Number.isInteger(failLeft) || failLeft < 0) usage(`bad --fail-first ${args['fail-first']}`);
if (!args.out) usage('--out FILE is required');
const secret = process.env[args['secret-env']];
if (!secret) usage(`the environment variable ${args['secret-env']} (the secret) is not set`);
const out = fs.openSync(args.out, 'a');

function parseJson(body) {
  try {
    // fatal: a body that is not UTF-8 is "not JSON", as in the Python receiver
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return null;
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const header = req.headers['x-faramesh-signature'] ?? null;
    let [status, reason] = [400, null];
    if (req.method !== 'POST') [status, reason] = [405, 'method not allowed'];
    else if (header === null) reason = 'missing signature';
    else if (verifySignature(secret, header, body)) {
      if (failLeft > 0) [status, reason, failLeft] = [503, 'told to fail', failLeft - 1];
      else status = 200;
    }
    // Rejected: tell a stale timestamp from a wrong signature, for the tests that read this.
    else if (verifySignature(secret, header, body, Infinity)) reason = 'stale timestamp';
    else reason = 'bad signature';

    const record = {
      status,
      reason,
      event: req.headers['x-faramesh-event'] ?? null,
      delivery: req.headers['x-faramesh-delivery'] ?? null,
      signature: header,
      body: parseJson(body),
    };
    // Written synchronously before answering, so a sender that got its answer finds the line.
    fs.writeSync(out, JSON.stringify(record) + '\n');
    const reply = JSON.stringify(status === 200 ? { ok: true } : { ok: false, reason });
    res.writeHead(status, { 'Content-Type': 'application/json' }).end(reply);
  });
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`);
});
// Every line is already written: stopping needs no more than closing the file.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    fs.closeSync(out);
    process.exit(0);
  });
}
