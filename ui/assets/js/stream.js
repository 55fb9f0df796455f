// The live event stream (GET /v1/events) read with fetch and a ReadableStream, because
// EventSource cannot send the Authorization header. Reconnects by itself with backoff and
// resumes with Last-Event-ID, so a server restart only shows as a short "reconnecting".

import { authHeaders, requestToken } from './api.js';

const MAX_BACKOFF_MS = 8000;
// The server sends `: ping` at least every 15 s; silence for longer means a dead connection.
const SILENCE_MS = 40000;

/**
 * Starts the stream. `onMessage(payload, id)` gets each parsed message, `onState(state, info)`
 * gets 'connecting' | 'live' | 'reconnecting', and `onOpen(isReconnect)` runs on every
 * successful connection (callers refresh their data there to catch anything missed).
 */
export function startStream({ onMessage, onState, onOpen }) {
  let lastEventId = null;
  let attempt = 0;
  let connectedBefore = false;
  let stopped = false;
  let controller = null;

  async function run() {
    while (!stopped) {
      onState(attempt === 0 && !connectedBefore ? 'connecting' : 'reconnecting', { attempt });
      try {
        await connectOnce();
      } catch (err) {
        if (err?.auth) {
          await requestToken(err.detail);
          continue;
        }
      }
      if (stopped) return;
      attempt += 1;
      const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(attempt, 6));
      onState('reconnecting', { attempt, retryInMs: delay });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  async function connectOnce() {
    controller = new AbortController();
    const headers = { Accept: 'text/event-stream', ...authHeaders() };
    if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId;
    const response = await fetch('/v1/events', { headers, cache: 'no-store', signal: controller.signal });
    if (response.status === 401) {
      let detail = null;
      try { detail = (await response.json())?.detail; } catch { /* not JSON */ }
      throw Object.assign(new Error('unauthorized'), { auth: true, detail });
    }
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);

    const isReconnect = connectedBefore;
    connectedBefore = true;
    attempt = 0;
    onState('live', {});
    onOpen(isReconnect);

    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let data = [];
    let id = null;
    let watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => controller.abort(), SILENCE_MS);
        buffer += value;
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          let line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line.endsWith('\r')) line = line.slice(0, -1);
          if (line === '') {
            if (id !== null) lastEventId = id;
            if (data.length) dispatch(data.join('\n'), lastEventId);
            data = [];
            id = null;
            continue;
          }
          if (line.startsWith(':')) continue; // comment (ping)
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let fieldValue = colon < 0 ? '' : line.slice(colon + 1);
          if (fieldValue.startsWith(' ')) fieldValue = fieldValue.slice(1);
          if (field === 'data') data.push(fieldValue);
          else if (field === 'id' && !fieldValue.includes('\0')) id = fieldValue;
        }
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  function dispatch(text, id) {
    let payload;
    try { payload = JSON.parse(text); } catch { return; }
    try { onMessage(payload, id); } catch (err) { console.error('Faramesh UI: could not apply a live update', err); }
  }

  run();
  return {
    stop() { stopped = true; controller?.abort(); },
    /** Drops the current connection and reconnects at once (used after a new token). */
    restart() { attempt = 0; controller?.abort(); },
  };
}
