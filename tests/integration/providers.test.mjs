// providers.test.mjs - one OpenAI (and one Anthropic) API in, every
// provider out: the mock plays OpenAI, Azure OpenAI, Anthropic and Gemini
// behind one gateway; chat completions, streams, tool calls and usage come
// back in the client's format from each, /v1/messages works against every
// backend, embeddings and legacy completions pass through, and a client can
// never choose where a request goes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { errorBody, mockWords, pollUntil, providerDeployments, startGateway, userMsg } from './harness.mjs';

const MODELS = ['m-openai', 'm-azure', 'm-anthropic', 'm-gemini'];

const TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
}];

/** content of the data events of an OpenAI stream. */
function openaiStream(events) {
  let text = '';
  const calls = {};
  let finish = null;
  let usage = null;
  for (const e of events) {
    if (e.data === '[DONE]') continue;
    const j = JSON.parse(e.data);
    if (j.usage) usage = j.usage;
    for (const c of j.choices ?? []) {
      if (c.delta?.content) text += c.delta.content;
      for (const t of c.delta?.tool_calls ?? []) {
        calls[t.index] ??= { id: '', name: '', args: '' };
        if (t.id) calls[t.index].id = t.id;
        if (t.function?.name) calls[t.index].name = t.function.name;
        if (t.function?.arguments) calls[t.index].args += t.function.arguments;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, calls: Object.values(calls), finish, usage };
}

describe('providers', () => {
  let gw;
  let key;

  before(async () => {
    gw = await startGateway({ deployments: providerDeployments });
    ({ key } = await gw.createKey({ tenant: 'providers' }));
  });

  after(async () => {
    await gw?.stop();
  });

  for (const model of MODELS) {
    test(`${model}: chat completion, stream and not, with usage`, async () => {
      const r = await gw.chat({ model, messages: userMsg('[[mock chunks=4]] hello'), max_tokens: 50 }, { key });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.object, 'chat.completion');
      // Translated answers name the model asked for; OpenAI-format ones
      // pass through as the provider wrote them.
      assert.ok([model, 'gpt-4o', 'my-gpt4o-deployment'].includes(r.json.model), r.json.model);
      assert.equal(r.json.choices[0].message.role, 'assistant');
      assert.equal(r.json.choices[0].message.content, mockWords(4));
      assert.equal(r.json.choices[0].finish_reason, 'stop');
      assert.ok(r.json.usage.prompt_tokens > 0);
      assert.equal(r.json.usage.completion_tokens, 4);

      const s = await gw.chat({ model, messages: userMsg('[[mock chunks=5]] hello'), stream: true,
        stream_options: { include_usage: true } }, { key, stream: true });
      assert.equal(s.status, 200, s.text);
      assert.equal(s.events.at(-1).data, '[DONE]');
      const o = openaiStream(s.events);
      assert.equal(o.text, mockWords(5));
      assert.equal(o.finish, 'stop');
      assert.equal(o.usage.completion_tokens, 5);
    });

    test(`${model}: tool calls, whole and streamed`, async () => {
      const body = { model, messages: userMsg('[[mock tool=get_weather]] weather in Paris?'), tools: TOOLS, max_tokens: 50 };
      const r = await gw.chat(body, { key });
      assert.equal(r.status, 200, r.text);
      const m = r.json.choices[0].message;
      assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
      assert.equal(m.tool_calls.length, 1);
      assert.equal(m.tool_calls[0].type, 'function');
      assert.equal(m.tool_calls[0].function.name, 'get_weather');
      assert.equal(typeof JSON.parse(m.tool_calls[0].function.arguments), 'object');

      const s = await gw.chat({ ...body, stream: true }, { key, stream: true });
      assert.equal(s.status, 200, s.text);
      const o = openaiStream(s.events);
      assert.equal(o.finish, 'tool_calls');
      assert.equal(o.calls.length, 1);
      assert.equal(o.calls[0].name, 'get_weather');
      assert.deepEqual(JSON.parse(o.calls[0].args), JSON.parse(m.tool_calls[0].function.arguments));

      // The tool's answer goes back in the next turn.
      const next = await gw.chat({
        model, tools: TOOLS, max_tokens: 50,
        messages: [
          { role: 'user', content: 'weather in Paris?' },
          { role: 'assistant', content: null, tool_calls: m.tool_calls },
          { role: 'tool', tool_call_id: m.tool_calls[0].id, content: '{"temp_c": 21}' },
        ],
      }, { key });
      assert.equal(next.status, 200, next.text);
      assert.equal(next.json.choices[0].finish_reason, 'stop');
    });

    test(`${model}: /v1/messages (Anthropic format in), stream and not`, async () => {
      const body = { model, max_tokens: 64, system: 'be brief', messages: [{ role: 'user', content: '[[mock chunks=3]] hi' }] };
      const r = await gw.request('/v1/messages', { method: 'POST', key, headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' }, body: JSON.stringify(body) });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.type, 'message');
      assert.equal(r.json.role, 'assistant');
      assert.equal(r.json.content[0].type, 'text');
      assert.equal(r.json.content[0].text, mockWords(3));
      assert.equal(r.json.stop_reason, 'end_turn');
      assert.equal(r.json.usage.output_tokens, 3);

      const s = await gw.request('/v1/messages', { method: 'POST', key, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
      assert.equal(s.status, 200, s.text);
      const types = [...s.text.matchAll(/^event: (\S+)$/gm)].map((x) => x[1]);
      assert.equal(types[0], 'message_start');
      assert.ok(types.includes('content_block_delta'));
      assert.equal(types.at(-1), 'message_stop');
      const text = [...s.text.matchAll(/"text_delta","text":"([^"]*)"/g)].map((x) => x[1]).join('');
      assert.equal(text, mockWords(3));
    });
  }

  test('/v1/messages: a model variant reaches Anthropic under its real name; bad input in Anthropic format', async () => {
    const ok = await gw.request('/v1/messages', { method: 'POST', key, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm-anthropic:floor', max_tokens: 16, messages: [{ role: 'user', content: '[[mock chunks=2]] hi' }] }) });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json.content[0].text, mockWords(2));
    let r = await gw.request('/v1/messages', { method: 'GET', key });
    assert.equal(r.status, 405);
    assert.equal(r.json.type, 'error');
    r = await gw.request('/v1/messages', { method: 'POST', key, headers: { 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(r.status, 415);
    assert.equal(r.json.type, 'error');
    assert.equal(r.json.error.type, 'invalid_request_error');
    r = await gw.request('/v1/messages', { method: 'POST', key, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm-anthropic', max_tokens: 5, base_url: 'http://169.254.169.254', messages: [{ role: 'user', content: 'x' }] }) });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.type, 'error');
    assert.match(r.json.error.message, /gateway's configuration/);
  });

  test('errors reach the client in its own format', async () => {
    const r = await gw.request('/v1/messages', { method: 'POST', key, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'no-such-model', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }) });
    assert.equal(r.status, 404);
    assert.equal(r.json.type, 'error');
    assert.equal(r.json.error.type, 'not_found_error');
    const c = await gw.chat({ model: 'm-anthropic', messages: userMsg('[[mock status=400]] x'), max_tokens: 5 }, { key });
    errorBody(c, 400);
  });

  test('embeddings and legacy completions pass through to OpenAI-format deployments', async () => {
    let r = await gw.request('/v1/embeddings', { method: 'POST', key, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-embedding-3-small', input: ['one', 'two'] }) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.data.length, 2);
    assert.ok(Array.isArray(r.json.data[0].embedding));
    assert.ok(r.json.usage.prompt_tokens > 0);
    r = await gw.request('/v1/completions', { method: 'POST', key, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm-openai', prompt: '[[mock chunks=3]] say', max_tokens: 10 }) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'text_completion');
    // A provider that has no embeddings API is never sent one.
    r = await gw.request('/v1/embeddings', { method: 'POST', key, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm-anthropic', input: 'x' }) });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'unsupported_by_deployment');
  });

  test('a field a translation cannot honour is refused by name (param), for each translated backend', async () => {
    for (const model of ['m-anthropic', 'm-gemini']) {
      const r = await gw.chat({ model, n: 2, messages: userMsg('hi') }, { key });
      const e = errorBody(r, 400, 'unsupported_by_deployment');
      assert.equal(e.param, 'n', `${model}: ${r.text}`);
    }
  });

  // The mock's vectors: component j of input i, in thousandths.
  const mockVector = (i, dims) => Array.from({ length: dims },
    (_, j) => (((i + 1) * 7919 + (j + 1) * 104729) % 2001 - 1000) / 1000);

  for (const model of ['text-embedding-3-small', 'e-azure', 'e-gemini']) {
    test(`embeddings from ${model}: floats, base64 and dimensions in OpenAI's shape`, async () => {
      const embed = (body) => gw.request('/v1/embeddings', { method: 'POST', key,
        headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, ...body }) });
      let r = await embed({ input: ['one', 'two', 'three'] });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.object, 'list');
      if (model === 'e-gemini') assert.equal(r.json.model, model); // translated: the client's name
      assert.deepEqual(r.json.data.map((d) => [d.object, d.index]), [['embedding', 0], ['embedding', 1], ['embedding', 2]]);
      for (const d of r.json.data) assert.deepEqual(d.embedding, mockVector(d.index, 8));
      assert.ok(r.json.usage.prompt_tokens > 0 && r.json.usage.total_tokens === r.json.usage.prompt_tokens, r.text);

      r = await embed({ input: 'one', encoding_format: 'base64', dimensions: 5 });
      assert.equal(r.status, 200, r.text);
      assert.equal(typeof r.json.data[0].embedding, 'string');
      const buf = Buffer.from(r.json.data[0].embedding, 'base64');
      const floats = Array.from({ length: buf.length / 4 }, (_, j) => buf.readFloatLE(j * 4));
      assert.deepEqual(floats, mockVector(0, 5).map(Math.fround));

      // A provider's refusal comes back in OpenAI's shape.
      r = await embed({ input: '[[mock status=400]] x' });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.error.type, 'invalid_request_error', r.text);
      assert.equal(typeof r.json.error.message, 'string');
    });
  }

  test('Gemini embeddings: token ids are refused by name, usage is metered as estimated', async () => {
    const r = await gw.request('/v1/embeddings', { method: 'POST', key, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'e-gemini', input: [[1, 2, 3]] }) });
    const e = errorBody(r, 400);
    assert.equal(e.param, 'input[0]');
    assert.match(e.message, /Gemini embeddings take text/);
    await pollUntil(async () => (await gw.metrics()).tollgate_usage_spool_pending === 0,
      { timeoutMs: 15_000, what: 'the spool to drain' });
    const out = await gw.cli(['spend', '--by', 'model', '--config', gw.cfgPath, '--format', 'json']);
    const row = JSON.parse(out.stdout).rows.find((x) => x.model === 'e-gemini');
    // Gemini reports no token counts for embeddings: the gateway's estimate
    // is recorded, and says so (the two answered requests of the test
    // above; its refused one costs nothing).
    assert.ok(row && row.prompt_tokens > 0, out.stdout);
    assert.equal(row.estimated_requests, 2, out.stdout);
  });

  test('a client can never choose the upstream (SSRF)', async () => {
    const before = await gw.mockStats();
    for (const field of ['api_base', 'base_url', 'api_key', 'azure_endpoint']) {
      const r = await gw.chat({ model: 'm-openai', messages: userMsg('hi'), [field]: 'http://169.254.169.254/latest' }, { key });
      const e = errorBody(r, 400);
      assert.equal(e.param, field);
      assert.match(e.message, /gateway's configuration/);
    }
    const now = await gw.mockStats();
    assert.deepEqual(now.requests ?? now, before.requests ?? before, 'nothing went upstream');
  });

  test('usage is metered per deployment that served it', async () => {
    await pollUntil(async () => (await gw.metrics()).tollgate_usage_spool_pending === 0,
      { timeoutMs: 15_000, what: 'the spool to drain' });
    const out = await gw.cli(['spend', '--by', 'model', '--config', gw.cfgPath, '--format', 'json']);
    const rows = JSON.parse(out.stdout).rows;
    for (const m of MODELS) {
      const row = rows.find((x) => x.model === m);
      assert.ok(row && row.requests > 0 && row.completion_tokens > 0, `no usage for ${m}: ${out.stdout}`);
      assert.equal(row.estimated_requests, 0, `${m}: usage was estimated, not read from the provider`);
    }
  });
});
