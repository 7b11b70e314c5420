// sse_upstream.test.mjs - SSE as real providers send it, not only as the
// mock does: CRLF line endings, a last event cut off by EOF without its
// blank line, one huge event, a client that stops reading for a while.
// The provider here is a small Node server on loopback whose behaviour is
// picked by the first word of the user message.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { mockDeployment, openStream, pollUntil, readSse, sleep, startGateway, userMsg } from './harness.mjs';

const chunk = (obj) => JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 0, model: 'raw-model', ...obj });
const content = (text) => chunk({ choices: [{ index: 0, delta: { content: text }, finish_reason: null }] });
const finish = () => chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] });
const usage = (p, c) => chunk({ choices: [], usage: { prompt_tokens: p, completion_tokens: c, total_tokens: p + c } });

/** rawUpstream serves /v1/chat/completions as SSE; mode is the first word
 * of the last message. */
function rawUpstream() {
  const srv = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      const mode = String(body.messages.at(-1).content).split(' ')[0];
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      switch (mode) {
      case 'noblank': // [DONE] ends with one newline, no blank line
        res.write(`data: ${content('a')}\n\ndata: ${finish()}\n\n`);
        res.end(`data: ${usage(11, 1)}\n\ndata: [DONE]\n`);
        break;
      case 'nonl': // the usage chunk is last, with no newline at all
        res.write(`data: ${content('a')}\n\ndata: ${finish()}\n\n`);
        res.end(`data: ${usage(13, 1)}`);
        break;
      case 'crlf':
        res.write(`data: ${content('a')}\r\n\r\ndata: ${content('b')}\r\n\r\n`);
        res.write(`data: ${finish()}\r\n\r\n`);
        res.end(`data: ${usage(17, 2)}\r\n\r\ndata: [DONE]\r\n\r\n`);
        break;
      case 'huge': // one 3 MB event, sent in small writes
      {
        const big = content('x'.repeat(3 << 20));
        const ev = `data: ${big}\n\n`;
        for (let i = 0; i < ev.length; i += 65536) res.write(ev.slice(i, i + 65536));
        res.end(`data: ${finish()}\n\ndata: ${usage(19, 1)}\n\ndata: [DONE]\n\n`);
        break;
      }
      case 'flood': // ~8 MB in 1,000 content events, as fast as it can
      {
        const piece = 'y'.repeat(8000);
        let i = 0;
        const pump = () => {
          while (i < 1000) {
            const ok = res.write(`data: ${content(piece)}\n\n`);
            i++;
            if (!ok) {
              res.once('drain', pump);
              return;
            }
          }
          res.end(`data: ${finish()}\n\ndata: ${usage(23, 1000)}\n\ndata: [DONE]\n\n`);
        };
        pump();
        break;
      }
      default:
        res.end(`data: ${finish()}\n\ndata: [DONE]\n\n`);
      }
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

describe('SSE from a provider', () => {
  let gw;
  let up;
  let key;

  before(async () => {
    up = await rawUpstream();
    const upPort = up.address().port;
    gw = await startGateway({
      deployments: (mockPort) => [
        { ...mockDeployment('raw', 'raw-model', mockPort), api_base: `http://127.0.0.1:${upPort}/v1` },
      ],
    });
    ({ key } = await gw.createKey({ tenant: 'sse-raw' }));
  });

  after(async () => {
    await gw?.stop();
    await new Promise((r) => up?.close(r));
  });

  const stream = (text, extra = {}) => gw.chat({ model: 'raw-model', messages: userMsg(text), stream: true, ...extra },
    { key, stream: true });

  async function spentTokens(tenant, requests) {
    return pollUntil(async () => {
      const s = await gw.spendTenant(tenant);
      return s.requests >= requests ? s : null;
    }, { timeoutMs: 10_000, intervalMs: 100, what: `${requests} requests metered for ${tenant}` });
  }

  test('a last event without its blank line before EOF still reaches the client', async () => {
    const r = await stream('noblank');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.error, undefined, String(r.error));
    const data = r.events.map((e) => e.data);
    assert.equal(data.at(-1), '[DONE]', `the final [DONE] was lost; got:\n${data.join('\n')}`);
  });

  test('a usage chunk cut off by EOF is still metered with the provider\'s numbers', async () => {
    const k = await gw.createKey({ tenant: 'sse-nonl' });
    const r = await gw.chat({ model: 'raw-model', messages: userMsg('nonl'), stream: true,
      stream_options: { include_usage: true } }, { key: k.key, stream: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.error, undefined, String(r.error));
    const u = r.events.find((e) => e.json?.usage);
    assert.ok(u, `the usage chunk never reached the client:\n${r.rawText}`);
    const s = await spentTokens('sse-nonl', 1);
    assert.equal(s.prompt_tokens, 13, 'metered an estimate, not the provider\'s usage');
    assert.equal(s.completion_tokens, 1);
  });

  test('CRLF line endings: events pass, the usage chunk is stripped and metered', async () => {
    const k = await gw.createKey({ tenant: 'sse-crlf' });
    const r = await gw.chat({ model: 'raw-model', messages: userMsg('crlf'), stream: true },
      { key: k.key, stream: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.error, undefined, String(r.error));
    const data = r.events.map((e) => e.data);
    assert.equal(r.events.filter((e) => e.json?.choices?.[0]?.delta?.content).length, 2, data.join('\n'));
    assert.ok(!r.events.some((e) => e.json?.usage), `the usage chunk the client did not ask for leaked:\n${data.join('\n')}`);
    assert.equal(data.at(-1), '[DONE]');
    const s = await spentTokens('sse-crlf', 1);
    assert.equal(s.prompt_tokens, 17);
    assert.equal(s.completion_tokens, 2);
  });

  test('one huge event arrives whole', async () => {
    const r = await stream('huge');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.error, undefined, String(r.error));
    const big = r.events.find((e) => e.json?.choices?.[0]?.delta?.content);
    assert.ok(big, 'no content event');
    assert.equal(big.json.choices[0].delta.content.length, 3 << 20);
    assert.equal(r.events.at(-1).data, '[DONE]');
  });

  test('a client that stops reading for a while still gets the whole stream', async () => {
    const s = await openStream(gw.port, {
      headers: { authorization: `Bearer ${key}` },
      body: { model: 'raw-model', messages: userMsg('flood'), stream: true },
    });
    assert.equal(s.status, 200);
    s.res.pause(); // let the gateway's buffer fill and the upstream pause
    await sleep(1500);
    s.res.resume();
    const r = await readSse(s.res, s.t0, { timeoutMs: 30_000 });
    assert.equal(r.error, undefined, String(r.error));
    const n = r.events.filter((e) => e.json?.choices?.[0]?.delta?.content).length;
    assert.equal(n, 1000, `got ${n} of 1000 content events`);
    assert.equal(r.events.at(-1).data, '[DONE]');
    await pollUntil(async () => (await gw.metrics()).tollgate_inflight_requests === 0,
      { timeoutMs: 5000, what: 'no request in flight' });
  });
});
