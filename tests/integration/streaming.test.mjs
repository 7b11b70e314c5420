// streaming.test.mjs - SSE through the gateway: order, content, the usage
// chunk the gateway asks for and must strip, incremental delivery, and a
// provider that drops mid-stream.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { mockWords, promptTokens, startGateway, userMsg } from './harness.mjs';

const isUsageChunk = (e) => e.json && e.json.usage != null;

/** checkStream asserts role chunk, n content chunks w0..w(n-1), finish
 * chunk, [optional usage chunk], [DONE] - nothing else, in that order. */
function checkStream(r, n, { usage } = {}) {
  assert.equal(r.status, 200, r.text);
  assert.match(String(r.headers['content-type']), /^text\/event-stream/);
  assert.equal(r.error, undefined, `the stream did not end cleanly: ${r.error}`);
  const ev = r.events;
  const data = ev.map((e) => e.data);
  const want = 1 + n + 1 + (usage ? 1 : 0) + 1;
  assert.equal(ev.length, want, `expected ${want} events, got ${ev.length}:\n${data.join('\n')}`);
  for (const e of ev.slice(0, -1)) {
    assert.ok(e.json, `not JSON: ${e.data}`);
    assert.equal(e.json.object, 'chat.completion.chunk');
  }
  const role = ev[0].json.choices[0];
  assert.equal(role.delta.role, 'assistant');
  assert.ok(!role.delta.content, `the role chunk carries content: ${ev[0].data}`);
  for (let i = 0; i < n; i++) {
    const c = ev[1 + i].json.choices[0];
    assert.equal(c.delta.content, `w${i}${i + 1 < n ? ' ' : ''}`, `content chunk ${i}: ${ev[1 + i].data}`);
    assert.equal(c.finish_reason, null);
  }
  const fin = ev[1 + n].json.choices[0];
  assert.equal(fin.finish_reason, 'stop', `finish chunk: ${ev[1 + n].data}`);
  assert.ok(!fin.delta.content, `finish chunk carries content: ${ev[1 + n].data}`);
  assert.equal(data[data.length - 1], '[DONE]');
  const usageChunks = ev.filter(isUsageChunk);
  if (!usage) {
    assert.equal(usageChunks.length, 0, `client did not ask for usage but got: ${usageChunks.map((e) => e.data)}`);
    assert.ok(!ev.some((e) => e.json && Array.isArray(e.json.choices) && e.json.choices.length === 0),
      'a chunk without choices (a stripped usage chunk?) reached the client');
  } else {
    assert.equal(usageChunks.length, 1, `expected exactly one usage chunk, got ${usageChunks.length}`);
    const u = ev[1 + n + 1];
    assert.ok(isUsageChunk(u), `the usage chunk must come after the finish chunk, before [DONE]: ${u.data}`);
    assert.deepEqual(u.json.choices, []);
    assert.deepEqual(u.json.usage, usage);
  }
  return ev.slice(1, 1 + n).map((e) => e.json.choices[0].delta.content).join('');
}

describe('streaming', () => {
  let gw;
  let key;

  before(async () => {
    gw = await startGateway();
    ({ key } = await gw.createKey({ tenant: 'stream' }));
  });

  after(async () => {
    await gw?.stop();
  });

  test('events arrive in order and carry the same content as non-stream', async () => {
    const messages = userMsg('[[mock chunks=5]] tell me');
    const r = await gw.chat({ model: 'mock-small', messages, stream: true }, { key, stream: true });
    assert.match(String(r.headers['x-request-id'] ?? ''), /\S/, 'x-request-id missing on a stream');
    assert.match(String(r.headers['x-tollgate-policy-revision'] ?? ''), /^\d+(; hash=[0-9a-f]{8})?$/, 'policy revision missing on a stream');
    const content = checkStream(r, 5);
    const plain = await gw.chat({ model: 'mock-small', messages }, { key });
    assert.equal(plain.status, 200, plain.text);
    assert.equal(content, plain.json.choices[0].message.content);
    assert.equal(content, mockWords(5));
  });

  test('no usage chunk unless the client asks for one', async () => {
    const messages = userMsg('[[mock chunks=3]]');
    const r = await gw.chat({ model: 'gpt-4o-mini', messages, stream: true }, { key, stream: true });
    checkStream(r, 3);
    const off = await gw.chat({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: false } },
      { key, stream: true });
    checkStream(off, 3);
  });

  test('with stream_options.include_usage: exactly one usage chunk, correct numbers', async () => {
    const messages = userMsg('[[mock chunks=4]] count these tokens please');
    const r = await gw.chat({ model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true } },
      { key, stream: true });
    const p = promptTokens(messages);
    checkStream(r, 4, { usage: { prompt_tokens: p, completion_tokens: 4, total_tokens: p + 4 } });
  });

  test('chunks are delivered as they come, not buffered', async () => {
    const messages = userMsg('[[mock chunks=5 chunk_delay_ms=100]]');
    const r = await gw.chat({ model: 'mock-small', messages, stream: true }, { key, stream: true });
    checkStream(r, 5);
    const first = r.events.find((e) => e.json?.choices?.[0]?.delta?.content);
    const total = r.tEnd;
    assert.ok(total >= 450, `5 chunks 100 ms apart took only ${total.toFixed(0)} ms`);
    assert.ok(first.t < total - 250,
      `first content chunk at ${first.t.toFixed(0)} ms, stream ended at ${total.toFixed(0)} ms: buffered?`);
    // And each chunk on its own: the content chunks are spread out too.
    const times = r.events.slice(1, 6).map((e) => e.t);
    assert.ok(times[4] - times[0] >= 250, `content chunks arrived within ${(times[4] - times[0]).toFixed(0)} ms`);
  });

  test('provider drops mid-stream: first chunks, then an error event, then the end', async () => {
    const messages = userMsg('[[mock drop_after=2]]');
    const r = await gw.chat({ model: 'mock-small', messages, stream: true }, { key, stream: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.error, undefined, `the connection was cut instead of ended: ${r.error}`);
    const ev = r.events;
    assert.equal(ev[0].json?.choices?.[0]?.delta?.role, 'assistant', ev[0]?.data);
    assert.equal(ev[1].json?.choices?.[0]?.delta?.content, 'w0 ');
    assert.equal(ev[2].json?.choices?.[0]?.delta?.content, 'w1 ');
    assert.equal(ev.length, 4, `expected role, w0, w1, error; got:\n${ev.map((e) => e.data).join('\n')}`);
    const last = ev[3];
    assert.ok(last.json && last.json.error, `the last event is not an error: ${last.data}`);
    assert.equal(typeof last.json.error.message, 'string');
    assert.ok(last.json.error.message.length > 0);
    assert.equal(typeof last.json.error.type, 'string');
    assert.ok(!ev.some((e) => e.data === '[DONE]'), 'a broken stream must not end with [DONE]');
    // The gateway is fine afterwards.
    const ok = await gw.chat({ model: 'mock-small', messages: userMsg('[[mock chunks=2]]'), stream: true },
      { key, stream: true });
    checkStream(ok, 2);
  });

  test('an upstream error status on a stream request is a JSON error, not SSE', async () => {
    const r = await gw.chat({ model: 'mock-small', messages: userMsg('[[mock status=500]]'), stream: true },
      { key, stream: true });
    assert.equal(r.status, 502, r.text);
    assert.ok(r.json?.error, `expected an OpenAI error body: ${r.text}`);
  });
});
