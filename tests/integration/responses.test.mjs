// responses.test.mjs - POST /v1/responses over raw HTTP: every request
// field translated (checked by what the provider received, echoed by the
// mock) and answered as a Response or as the Responses event stream with
// its order and sequence numbers; native passthrough to an OpenAI
// deployment, translation to the others; errors in OpenAI's shape
// (unknown fields, bad items, built-in tools away from OpenAI, a stream
// cut mid-way as an "error" event); usage and budgets as for chat
// completions; a guardrail-redacted prompt reaches the provider redacted
// (and the request is then translated, never sent natively); what a
// gateway says to unknown ids at previous_response_id and /v1/responses/{id}
// (storing itself: responses_store.test.mjs).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  errorBody, mockWords, openStream, pollUntil, providerDeployments, readSse, startGateway,
} from './harness.mjs';

const CARD = '4111 1111 1111 1111';

// gpt-4o-mini in policies/pricing.json: USD 0.15 in, 0.60 out per 1M tokens.
const usd = (micro) => (micro / 1e6).toFixed(6);

const bundle = {
  'bundle.json': { name: 'responses-it', revision: 1 },
  'access.policy.json': { rules: [{ id: 'allow-all', kind: 'access', effect: 'allow' }] },
  'guard.policy.json': {
    rules: [{
      id: 'in-redact', kind: 'guardrail', stages: ['input'], detectors: ['pii.card'], action: 'redact',
      when: { all: [{ exists: 'request.metadata.guard' }] },
    }, {
      id: 'out-block', kind: 'guardrail', stages: ['output'], detectors: ['secret'], action: 'block',
      when: { all: [{ exists: 'request.metadata.outblock' }] },
    }],
  },
  'budget.policy.json': {
    rules: [{
      id: 'resp-budget', kind: 'budget', scope: 'tenant', window: 'daily', limit_usd: Number(usd(60)),
      when: { all: [{ eq: ['tenant.id', 'resp-budget'] }, { eq: ['request.model', 'gpt-4o-mini'] }] },
    }],
  },
};

/** post sends a Responses request; with stream, reads the events. */
async function post(gw, key, body, { headers = {}, stream = false } = {}) {
  const h = { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers };
  if (!stream) {
    return gw.request('/v1/responses', { method: 'POST', headers: h, body: JSON.stringify(body) });
  }
  const s = await openStream(gw.port, { path: '/v1/responses', headers: h, body });
  assert.equal(s.status, 200);
  assert.match(String(s.headers['content-type']), /^text\/event-stream/);
  const r = await readSse(s.res, s.t0);
  for (const e of r.events) e.event = /^event: (.*)$/m.exec(e.raw)?.[1];
  return { headers: s.headers, ...r };
}

/** checkStream asserts the Responses event stream's shape: every event
 * named as its type, sequence numbers 0, 1, 2, ... and the order of the
 * item events; returns {text, args, final}. */
function checkStream(events) {
  const evs = events.filter((e) => e.json);
  evs.forEach((e, i) => {
    assert.equal(e.json.sequence_number, i, `event ${i}: ${e.data}`);
    assert.equal(e.event, e.json.type, `event ${i} is named ${e.event}`);
  });
  const types = evs.map((e) => e.json.type);
  assert.deepEqual(types.slice(0, 2), ['response.created', 'response.in_progress']);
  assert.equal(evs[0].json.response.status, 'in_progress');
  const open = [];
  for (const t of types.slice(2, -1)) {
    if (t === 'response.output_item.added') open.push('item');
    if (t === 'response.output_item.done') assert.equal(open.pop(), 'item');
  }
  assert.equal(open.length, 0, `items left open: ${types.join(' ')}`);
  const text = evs.filter((e) => e.json.type === 'response.output_text.delta').map((e) => e.json.delta).join('');
  const args = evs.filter((e) => e.json.type === 'response.function_call_arguments.delta').map((e) => e.json.delta).join('');
  return { text, args, types, final: evs.at(-1).json };
}

describe('POST /v1/responses', () => {
  let gw;
  let key;

  before(async () => {
    gw = await startGateway({ deployments: (p) => providerDeployments(p), bundle, pdpAdmin: true });
    ({ key } = await gw.createKey({ tenant: 'resp' }));
  });
  after(async () => {
    await gw?.stop();
  });

  // What each field becomes upstream is pinned byte for byte by the unit
  // goldens (tests/unit/dataplane/test_dp_resp.c); here: served end to end.
  test('a request with every field is served by a translated provider; the Response echoes them', async () => {
    // echo=1: the mock answers with the last user message's text. Azure:
    // translated (only OpenAI itself gets Responses natively).
    const r = await post(gw, key, {
      model: 'm-azure', instructions: 'Be brief.', max_output_tokens: 50, temperature: 0.2, top_p: 0.9,
      metadata: { team: 'a' }, store: false, user: 'u-1', parallel_tool_calls: false,
      reasoning: { effort: 'low' }, text: { format: { type: 'json_schema', name: 'w', schema: { type: 'object' } } },
      tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }], tool_choice: 'auto',
      input: [
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'first' }] },
        { role: 'assistant', content: 'ok' },
        { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c1', output: 'result' },
        { role: 'user', content: [{ type: 'input_text', text: 'echo me [[mock echo=1]]' },
          { type: 'input_image', image_url: 'data:image/png;base64,iVBORw0KGgo=' }] },
      ],
    });
    assert.equal(r.status, 200, r.text);
    const o = r.json;
    assert.equal(o.object, 'response');
    assert.match(o.id, /^resp_/);
    assert.equal(o.status, 'completed');
    assert.equal(o.model, 'm-azure');
    assert.equal(o.output[0].type, 'message');
    assert.equal(o.output[0].role, 'assistant');
    assert.equal(o.output[0].content[0].type, 'output_text');
    assert.equal(o.output[0].content[0].text, 'echo me');
    // Echoed as sent; store is false: this gateway keeps no responses.
    assert.equal(o.instructions, 'Be brief.');
    assert.equal(o.max_output_tokens, 50);
    assert.equal(o.temperature, 0.2);
    assert.equal(o.top_p, 0.9);
    assert.deepEqual(o.metadata, { team: 'a' });
    assert.deepEqual(o.reasoning, { effort: 'low' });
    assert.equal(o.user, 'u-1');
    assert.equal(o.store, false);
    assert.equal(o.parallel_tool_calls, false);
    assert.equal(o.tool_choice, 'auto');
    assert.equal(o.tools[0].name, 'f');
    assert.equal(o.text.format.type, 'json_schema');
    const u = o.usage;
    assert.equal(u.output_tokens, 3); // the echo in three pieces
    assert.equal(u.total_tokens, u.input_tokens + u.output_tokens);
    assert.equal(u.input_tokens_details.cached_tokens, 0);
    assert.equal(u.output_tokens_details.reasoning_tokens, 0);
    assert.ok(u.input_tokens > 10, `input tokens ${u.input_tokens}`);
    assert.equal(r.headers['x-tollgate-deployment'], 'az');
    // A format the deployment cannot honour is refused, not dropped.
    const j = await post(gw, key, { model: 'm-anthropic', input: 'hi',
      text: { format: { type: 'json_schema', name: 'w', schema: { type: 'object' } } } });
    assert.equal(errorBody(j, 400, 'unsupported_by_deployment').param, 'response_format');
  });

  test('a stream from a translated provider: events in order with sequence numbers, usage at the end', async () => {
    for (const model of ['m-anthropic', 'm-gemini', 'm-azure']) {
      const r = await post(gw, key, { model, input: '[[mock chunks=5]] hi', stream: true }, { stream: true });
      const s = checkStream(r.events);
      assert.equal(s.text, mockWords(5));
      assert.deepEqual(s.types.slice(2, 5), ['response.output_item.added', 'response.content_part.added',
        'response.output_text.delta']);
      assert.deepEqual(s.types.slice(-4), ['response.output_text.done', 'response.content_part.done',
        'response.output_item.done', 'response.completed']);
      assert.equal(s.final.type, 'response.completed');
      assert.equal(s.final.response.status, 'completed');
      assert.equal(s.final.response.usage.output_tokens, 5);
      assert.equal(s.final.response.output[0].content[0].text, mockWords(5));
      assert.match(s.final.response.id, /^resp_req_/, `${model} was translated`);
    }
  });

  test('a function call streamed: added, argument deltas, done, completed', async () => {
    const r = await post(gw, key, {
      model: 'm-anthropic', stream: true, tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object' } }],
      input: '[[mock tool=get_weather]] weather?',
    }, { stream: true });
    const s = checkStream(r.events);
    assert.deepEqual(JSON.parse(s.args), { city: 'Paris', n: 1 });
    const added = r.events.find((e) => e.json?.type === 'response.output_item.added').json.item;
    assert.equal(added.type, 'function_call');
    assert.equal(added.name, 'get_weather');
    const done = r.events.find((e) => e.json?.type === 'response.function_call_arguments.done').json;
    assert.equal(done.arguments, s.args);
    assert.equal(s.final.response.output[0].type, 'function_call');
    assert.equal(s.final.response.output[0].call_id, added.call_id);
  });

  test('max_output_tokens cuts the answer: status incomplete, reason max_output_tokens', async () => {
    const r = await post(gw, key, { model: 'm-anthropic', input: '[[mock chunks=40]] hi', max_output_tokens: 16 });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.status, 'incomplete');
    assert.deepEqual(r.json.incomplete_details, { reason: 'max_output_tokens' });
    const s = checkStream((await post(gw, key, { model: 'm-anthropic', input: '[[mock chunks=40]] hi',
      max_output_tokens: 16, stream: true }, { stream: true })).events);
    assert.equal(s.final.type, 'response.incomplete');
  });

  test('an OpenAI deployment gets the request natively, byte for byte, and its answer as it came', async () => {
    const body = { model: 'm-openai', input: '[[mock chunks=3]] hi', store: true };
    const r = await post(gw, key, body);
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.id, /^resp_mock_/, 'not the provider\'s own Response');
    assert.equal(r.json.output[0].content[0].text, mockWords(3));
    assert.equal(r.headers['x-tollgate-deployment'], 'oai');
    const s = checkStream((await post(gw, key, { ...body, stream: true }, { stream: true })).events);
    assert.equal(s.text, mockWords(3));
    assert.match(s.final.response.id, /^resp_mock_/);
    // A prompt that only mentions the stored-response fields is not a
    // reference (it is not looked up, and goes on as sent).
    const words = '[[mock echo=1]] what do previous_response_id and item_reference do?';
    for (const model of ['m-openai', 'm-anthropic']) {
      const m = await post(gw, key, { model, input: words });
      assert.equal(m.status, 200, m.text);
      assert.match(m.json.output[0].content[0].text, /what do previous_response_id and item_reference do\?$/, model);
    }
    // A built-in tool is served natively only.
    const w = await post(gw, key, { model: 'm-openai', input: 'hi', tools: [{ type: 'web_search_preview' }] });
    assert.equal(w.status, 200, w.text);
  });

  test('a built-in tool is refused at a translated deployment, naming it', async () => {
    const r = await post(gw, key, { model: 'm-anthropic', input: 'hi', tools: [{ type: 'web_search_preview' }] });
    const e = errorBody(r, 400, 'unsupported_by_deployment');
    assert.match(e.message, /web_search_preview/);
    assert.equal(e.param, 'tools');
  });

  test('bad requests get OpenAI errors that say what is wrong', async () => {
    const cases = [
      [{ model: 'm-anthropic', input: 'hi', frobnicate: 1 }, 'frobnicate', /Unknown parameter/],
      [{ model: 'm-anthropic' }, 'input', /'input' is required/],
      [{ input: 'hi' }, 'model', /'model' is required/],
      [{ model: 'm-anthropic', input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input', /'msg_1' not found/],
      [{ model: 'm-anthropic', input: [{ type: 'item_reference', id: 7 }] }, 'input[0]', /item_reference/],
      [{ model: 'm-anthropic', input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] },
        'input[0].content[0]', /input_file/],
      [{ model: 'm-anthropic', input: 'hi', previous_response_id: 'resp_1' }, 'previous_response_id', /resp_1' not found/],
      [{ model: 'm-anthropic', input: 'hi', previous_response_id: 7 }, 'previous_response_id', /a string/],
      [{ model: 'm-anthropic', input: [{ type: 'item_reference', id: 'msg_nosuch_0' }] }, 'input', /msg_nosuch_0' not found/],
      [{ model: 'm-anthropic', input: 'hi', text: { format: { type: 'json_schema' } } }, 'text.format', /json_schema/],
      [{ model: 'm-anthropic', input: 'hi', max_output_tokens: -1 }, 'max_output_tokens', /max_output_tokens/],
      [{ model: 'm-anthropic', input: 'hi', stream: 'yes' }, 'stream', /true or false/],
    ];
    for (const [body, param, re] of cases) {
      const e = errorBody(await post(gw, key, body), 400);
      assert.equal(e.param, param, JSON.stringify(e));
      assert.match(e.message, re);
    }
    const bad = await gw.request('/v1/responses', { method: 'POST', key, headers: { 'content-type': 'application/json' },
      body: '{"model":"m-openai","input":"a","input":"b"}' });
    errorBody(bad, 400, 'invalid_json');
  });

  test('GET/DELETE /v1/responses/{id} and its input_items: unknown ids, keys, methods and query values', async () => {
    const nf = await gw.request('/v1/responses/resp_abc', { key });
    assert.match(errorBody(nf, 404, 'not_found').message, /resp_abc/);
    errorBody(await gw.request('/v1/responses/resp_abc', { method: 'DELETE', key }), 404, 'not_found');
    errorBody(await gw.request('/v1/responses/resp_abc/input_items', { key }), 404, 'not_found');
    errorBody(await gw.request('/v1/responses/resp_abc'), 401, 'missing_api_key');
    errorBody(await gw.request('/v1/responses/resp_abc', { key: 'sk-tg-not-a-key' }), 401, 'invalid_api_key');
    const m = await gw.request('/v1/responses/resp_abc/input_items', { method: 'DELETE', key });
    errorBody(m, 405, 'method_not_allowed');
    errorBody(await gw.request('/v1/responses/resp_abc/other', { key }), 404, 'not_found');
    errorBody(await gw.request('/v1/responses/resp%20x', { key }), 404, 'not_found');
    for (const q of ['limit=0', 'limit=101', 'limit=x', 'order=up', 'after=']) {
      errorBody(await gw.request(`/v1/responses/resp_abc/input_items?${q}`, { key }), 400, 'invalid_value');
    }
  });

  test('a stream the provider cuts ends with an error event, translated and native', async () => {
    for (const model of ['m-anthropic', 'm-openai']) {
      const r = await post(gw, key, { model, input: '[[mock chunks=6 drop_after=2]] hi', stream: true }, { stream: true });
      const last = r.events.filter((e) => e.json).at(-1);
      assert.equal(last.event, 'error', `${model}: ${last.data}`);
      assert.equal(last.json.type, 'error');
      assert.equal(typeof last.json.message, 'string');
      assert.ok(!r.events.some((e) => e.json?.type === 'response.completed'));
    }
  });

  test('usage and cost are those of the same chat completion; a budget stops both alike', async () => {
    const a = await gw.createKey({ tenant: 'resp-chat-twin' });
    const b = await gw.createKey({ tenant: 'resp-resp-twin' });
    const text = '[[mock chunks=7]] the same question';
    assert.equal((await gw.chat({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'sys' },
      { role: 'user', content: text }] }, { key: a.key })).status, 200);
    assert.equal((await post(gw, b.key, { model: 'gpt-4o-mini', instructions: 'sys', input: text })).status, 200);
    const [ta, tb] = await pollUntil(async () => {
      const x = await gw.spendTenant('resp-chat-twin');
      const y = await gw.spendTenant('resp-resp-twin');
      return x.requests === 1 && y.requests === 1 ? [x, y] : null;
    }, { timeoutMs: 20_000, what: 'both twins recorded' });
    assert.equal(tb.prompt_tokens, ta.prompt_tokens);
    assert.equal(tb.completion_tokens, 7);
    assert.equal(tb.cost_micro_usd, ta.cost_micro_usd);
    assert.ok(tb.cost_micro_usd > 0);

    const k = await gw.createKey({ tenant: 'resp-budget' });
    let refused;
    for (let i = 0; i < 40 && !refused; i++) {
      const r = await post(gw, k.key, { model: 'gpt-4o-mini', input: '[[mock chunks=20]] hi', max_output_tokens: 20 });
      if (r.status !== 200) refused = r;
    }
    assert.ok(refused, 'the budget never stopped a Responses request');
    errorBody(refused, 429, 'budget_exceeded');
    errorBody(await gw.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 },
      { key: k.key }), 429, 'budget_exceeded');
  });

  test('an output guardrail ends a Responses stream with an error event before the secret', async () => {
    const AWS = 'AKIAZ7QK3M2XW9PL4TRE';
    for (const model of ['m-openai', 'm-anthropic']) {
      const r = await post(gw, key, { model, stream: true, input: `here: ${AWS} and more text after it [[mock echo=1 chunks=3]]` },
        { stream: true, headers: { 'x-tollgate-meta-outblock': '1' } });
      const evs = r.events.filter((e) => e.json);
      evs.forEach((e, i) => assert.equal(e.json.sequence_number, i));
      const last = evs.at(-1);
      assert.equal(last.event, 'error', `${model}: ${last.data}`);
      assert.equal(last.json.code, 'guardrail_blocked');
      assert.ok(!r.rawText.includes(AWS), `${model}: the secret reached the client`);
      const whole = await post(gw, key, { model, input: `here: ${AWS} [[mock echo=1]]` },
        { headers: { 'x-tollgate-meta-outblock': '1' } });
      assert.ok(!whole.text.includes(AWS));
      assert.equal(whole.status, 400, whole.text);
    }
  });

  test('a guardrail-redacted prompt reaches the provider redacted (translated, even to OpenAI)', async () => {
    for (const model of ['m-openai', 'm-anthropic']) {
      const r = await post(gw, key, { model, input: `pay ${CARD} now [[mock echo=1]]` },
        { headers: { 'x-tollgate-meta-guard': '1' } });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.output[0].content[0].text, 'pay [REDACTED:CARD] now');
      assert.match(r.json.id, /^resp_req_/, 'a guarded request went natively');
    }
  });
});
