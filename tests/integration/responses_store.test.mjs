// responses_store.test.mjs - stored Responses (POST /v1/responses with
// "store", the default): a kept Response comes back from GET exactly as
// the client got it, with its input items (paged: order, limit, after,
// has_more), until DELETE; store false and capture level none keep
// nothing, and the x-tollgate-store header and the body's "store" say so;
// previous_response_id sends the provider the whole history (the mock's
// directives found in earlier turns and its token count prove it) across
// provider formats (Anthropic, OpenAI natively, Gemini, Bedrock) and is
// echoed; item_reference to a kept item (gateway-made or a native answer's
// own id) is replaced by the item, an unknown one is 400 item_not_found;
// another tenant's ids are unknown; a stream's final event is released only
// once stored; the per-tenant quota (pdp.responses.max_bytes_per_tenant)
// and the retention (pdp.responses.retention_seconds); a guardrail-redacted
// prompt is stored redacted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { awsEnv, bedrockDeployments } from './bedrock.mjs';
import {
  errorBody, mockWords, openStream, providerDeployments, readSse, sleep, startGateway,
} from './harness.mjs';

const CARD = '4111 1111 1111 1111';
const H = 'x-tollgate-store';
const STORED = 'stored';
const STORED_REDACTED = 'stored; input redacted by a guardrail';
const NOT_STORE_FALSE = 'not stored; store is false';
const NOT_CAPTURE_NONE = 'not stored; capture level none';
const NOT_QUOTA = "not stored; over the tenant's quota (pdp.responses.max_bytes_per_tenant)";
const NOT_TOO_LARGE = 'not stored; too large for pdp.responses.max_response_bytes';

const WEATHER = {
  type: 'function', name: 'get_weather', description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

// Tenants: st-a and st-b are audited with capture metadata (so kept),
// st-full with capture full (kept), st-nocap only by a rule whose capture
// is none (never kept).
const bundle = {
  'bundle.json': { name: 'responses-store-it', revision: 1 },
  'access.policy.json': { rules: [{ id: 'allow-all', kind: 'access', effect: 'allow' }] },
  'audit.policy.json': {
    rules: [
      { id: 'audit-meta', kind: 'audit', capture: 'metadata', when: { not: { eq: ['tenant.id', 'st-nocap'] } } },
      { id: 'audit-full', kind: 'audit', capture: 'full', when: { eq: ['tenant.id', 'st-full'] } },
      { id: 'audit-none', kind: 'audit', capture: 'none', when: { eq: ['tenant.id', 'st-nocap'] } },
    ],
  },
  'guard.policy.json': {
    rules: [{
      id: 'in-redact', kind: 'guardrail', stages: ['input'], detectors: ['pii.card'], action: 'redact',
      when: { all: [{ exists: 'request.metadata.guard' }] },
    }],
  },
};

// ---- helpers --------------------------------------------------------------

/** post sends a Responses request; with stream, reads its events (each
 * with .event, its SSE event name); onEvent sees each as it arrives. */
async function post(gw, key, body, { headers = {}, stream = false, onEvent } = {}) {
  const h = { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers };
  if (!stream) {
    return gw.request('/v1/responses', { method: 'POST', headers: h, body: JSON.stringify(body) });
  }
  const s = await openStream(gw.port, { path: '/v1/responses', headers: h, body: { ...body, stream: true } });
  assert.equal(s.status, 200, `stream answered ${s.status}`);
  assert.match(String(s.headers['content-type']), /^text\/event-stream/);
  const r = await readSse(s.res, s.t0, {
    onEvent: (e) => {
      e.event = /^event: (.*)$/m.exec(e.raw)?.[1];
      onEvent?.(e);
    },
  });
  assert.equal(r.error, undefined, `the stream broke: ${r.error}`);
  const evs = r.events.filter((e) => e.json);
  const final = evs.at(-1)?.json;
  const created = evs.find((e) => e.json.type === 'response.created')?.json;
  const text = evs.filter((e) => e.json.type === 'response.output_text.delta').map((e) => e.json.delta).join('');
  return { headers: s.headers, events: evs, final, created, text };
}

/** ok posts and asserts a 200 Response. */
async function ok(gw, key, body, opts) {
  const r = await post(gw, key, body, opts);
  assert.equal(r.status, 200, `${body.model}: ${r.text}`);
  assert.equal(r.json.object, 'response', r.text);
  return r;
}

const getResp = (gw, key, id) => gw.request(`/v1/responses/${id}`, { key });
const delResp = (gw, key, id) => gw.request(`/v1/responses/${id}`, { method: 'DELETE', key });
const listItems = (gw, key, id, q = '') => gw.request(`/v1/responses/${id}/input_items${q ? `?${q}` : ''}`, { key });

/** outText is the text of a Response's output messages. */
const outText = (resp) => resp.output.filter((o) => o.type === 'message')
  .flatMap((o) => o.content).map((p) => p.text ?? '').join('');

/** itemText is what an input item says: a message's text, a call's
 * arguments or a call output's output. */
function itemText(it) {
  if (it.type === 'function_call') return it.arguments;
  if (it.type === 'function_call_output') return typeof it.output === 'string' ? it.output : JSON.stringify(it.output);
  if (typeof it.content === 'string') return it.content;
  assert.ok(Array.isArray(it.content), `item without content: ${JSON.stringify(it)}`);
  return it.content.map((p) => p.text ?? '').join('');
}

/** allItems reads every stored input item of id, oldest first, checking the
 * list object's shape. */
async function allItems(gw, key, id) {
  const r = await listItems(gw, key, id, 'order=asc&limit=100');
  assert.equal(r.status, 200, r.text);
  checkList(r.json);
  assert.equal(r.json.has_more, false);
  return r.json.data;
}

function checkList(l) {
  assert.equal(l.object, 'list', JSON.stringify(l));
  assert.ok(Array.isArray(l.data), JSON.stringify(l));
  for (const it of l.data) assert.equal(typeof it.id, 'string', `an item without id: ${JSON.stringify(it)}`);
  assert.equal(l.first_id, l.data[0]?.id ?? null);
  assert.equal(l.last_id, l.data.at(-1)?.id ?? null);
  assert.equal(typeof l.has_more, 'boolean');
}

/** rid is the request id a translated Response's id is made of. */
const rid = (resp) => {
  assert.match(resp.id, /^resp_req_/, `not a gateway-made id: ${resp.id}`);
  return resp.id.slice('resp_'.length);
};

/** twin sends the same conversation spelled out in full (store false) and
 * returns its Response: what the provider should have been sent. */
async function twin(gw, key, body) {
  const r = await post(gw, key, { ...body, store: false });
  assert.equal(r.status, 200, `twin: ${r.text}`);
  assert.equal(r.headers[H], NOT_STORE_FALSE);
  return r.json;
}

// An item id as OpenAI makes them (one underscore), which no response here holds.
const NATIVE_REF = { type: 'item_reference', id: 'msg_67ccd3a9da748190baa7f1570fe91ac604becb25c7ba2e0f' };

const user = (text) => ({ role: 'user', content: text });
const assistant = (text) => ({ role: 'assistant', content: text });

// ---- the main gateway -------------------------------------------------------

describe('stored responses', () => {
  let gw;
  let a; // tenant st-a
  let b; // tenant st-b
  let nocap; // tenant st-nocap
  let full; // tenant st-full

  before(async () => {
    gw = await startGateway({
      deployments: (p) => [...providerDeployments(p), ...bedrockDeployments(p)],
      dataplaneEnv: awsEnv(),
      dataplane: { max_body_bytes: 1 << 20 }, // the product's default
      bundle,
    });
    a = (await gw.createKey({ tenant: 'st-a' })).key;
    b = (await gw.createKey({ tenant: 'st-b' })).key;
    nocap = (await gw.createKey({ tenant: 'st-nocap' })).key;
    full = (await gw.createKey({ tenant: 'st-full' })).key;
  });
  after(async () => {
    await gw?.stop();
  });

  test('stored: GET gives back the Response the client got; input_items; DELETE; then 404 (translated and native)', async () => {
    for (const model of ['m-anthropic', 'm-openai']) {
      const r = await ok(gw, a, { model, input: '[[mock chunks=3]] hello there' });
      assert.equal(r.headers[H], STORED, `${model}: x-tollgate-store`);
      const o = r.json;
      assert.equal(o.store, true, `${model}: the body says store ${o.store}`);
      assert.equal(outText(o), mockWords(3));
      if (model === 'm-openai') {
        assert.match(o.id, /^resp_mock_/, 'a native answer keeps OpenAI\'s id');
        assert.match(o.output[0].id, /^msg_mock_/);
      } else {
        assert.equal(o.id, `resp_${r.headers['x-request-id']}`);
        assert.equal(o.output[0].id, `msg_${rid(o)}_0`);
      }

      const g = await getResp(gw, a, o.id);
      assert.equal(g.status, 200, `${model}: GET ${g.text}`);
      assert.match(String(g.headers['content-type']), /^application\/json/);
      assert.deepEqual(g.json, o, `${model}: GET is not what the client got`);

      const l = await listItems(gw, a, o.id);
      assert.equal(l.status, 200, l.text);
      checkList(l.json);
      assert.equal(l.json.data.length, 1);
      assert.equal(l.json.has_more, false);
      const it = l.json.data[0];
      assert.equal(it.type, 'message');
      assert.equal(it.role, 'user');
      assert.equal(itemText(it), '[[mock chunks=3]] hello there');
      if (model !== 'm-openai') assert.equal(it.id, `msg_${rid(o)}_in0`);

      const d = await delResp(gw, a, o.id);
      assert.equal(d.status, 200, d.text);
      assert.deepEqual(d.json, { id: o.id, object: 'response', deleted: true });
      errorBody(await getResp(gw, a, o.id), 404, 'not_found');
      errorBody(await listItems(gw, a, o.id), 404, 'not_found');
      errorBody(await delResp(gw, a, o.id), 404, 'not_found');
    }
  });

  test('a conversation larger than pdp.max_message_bytes (128 KiB) is kept and continued', async () => {
    const long = `[[mock chunks=3]] ${'a long tool output line\n'.repeat(12000)}`; // 288 kB
    const r1 = await ok(gw, a, { model: 'm-anthropic', input: long });
    assert.equal(r1.headers[H], STORED);
    const g = await getResp(gw, a, r1.json.id);
    assert.equal(g.status, 200, g.text.slice(0, 300));
    assert.deepEqual(g.json, r1.json);
    const [it] = await allItems(gw, a, r1.json.id);
    assert.equal(itemText(it), long);
    const r2 = await ok(gw, a, { model: 'm-gemini', input: 'and then?', previous_response_id: r1.json.id });
    assert.equal(r2.headers[H], STORED);
    assert.equal(outText(r2.json), mockWords(3), 'the first turn did not reach the provider');
    const w = await twin(gw, a, { model: 'm-gemini', input: [user(long), assistant(outText(r1.json)), user('and then?')] });
    assert.equal(r2.json.usage.input_tokens, w.usage.input_tokens);
  });

  test('input_items: newest first by default; order, limit, after and has_more page through them', async () => {
    const input = [user('one'), assistant('two'), { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'three' }] },
      user('four [[mock chunks=2]]'), user('five')];
    const r = await ok(gw, a, { model: 'm-gemini', input });
    assert.equal(r.headers[H], STORED);
    const id = r.json.id;
    const texts = (l) => l.data.map(itemText);

    const all = await listItems(gw, a, id);
    assert.equal(all.status, 200, all.text);
    checkList(all.json);
    assert.deepEqual(texts(all.json), ['five', 'four [[mock chunks=2]]', 'three', 'two', 'one']);
    assert.equal(all.json.has_more, false);
    const ids = all.json.data.map((x) => x.id);
    assert.deepEqual(ids, [4, 3, 2, 1, 0].map((n) => `msg_${rid(r.json)}_in${n}`));
    assert.deepEqual(all.json.data.map((x) => x.role), ['user', 'user', 'user', 'assistant', 'user']);
    assert.deepEqual((await listItems(gw, a, id, 'order=desc')).json, all.json);

    const p1 = (await listItems(gw, a, id, 'order=asc&limit=2')).json;
    checkList(p1);
    assert.deepEqual(texts(p1), ['one', 'two']);
    assert.equal(p1.has_more, true);
    const p2 = (await listItems(gw, a, id, `order=asc&limit=2&after=${p1.last_id}`)).json;
    checkList(p2);
    assert.deepEqual(texts(p2), ['three', 'four [[mock chunks=2]]']);
    assert.equal(p2.has_more, true);
    const p3 = (await listItems(gw, a, id, `order=asc&limit=2&after=${p2.last_id}`)).json;
    checkList(p3);
    assert.deepEqual(texts(p3), ['five']);
    assert.equal(p3.has_more, false);
    // Exactly as many as are left: no more.
    const p4 = (await listItems(gw, a, id, `order=asc&limit=3&after=${p1.last_id}`)).json;
    assert.deepEqual(texts(p4), ['three', 'four [[mock chunks=2]]', 'five']);
    assert.equal(p4.has_more, false);

    const d1 = (await listItems(gw, a, id, 'limit=3')).json;
    assert.deepEqual(texts(d1), ['five', 'four [[mock chunks=2]]', 'three']);
    assert.equal(d1.has_more, true);
    const d2 = (await listItems(gw, a, id, `limit=3&order=desc&after=${d1.last_id}`)).json;
    assert.deepEqual(texts(d2), ['two', 'one']);
    assert.equal(d2.has_more, false);
    const one = (await listItems(gw, a, id, 'limit=1')).json;
    assert.deepEqual(texts(one), ['five']);
    assert.equal(one.has_more, true);
  });

  test('the default limit is 20 items', async () => {
    const input = Array.from({ length: 23 }, (_, i) => user(`m${i}`));
    const r = await ok(gw, a, { model: 'm-anthropic', input });
    const l = (await listItems(gw, a, r.json.id)).json;
    checkList(l);
    assert.equal(l.data.length, 20);
    assert.equal(l.has_more, true);
    assert.equal(itemText(l.data[0]), 'm22');
    assert.equal(itemText(l.data[19]), 'm3');
    const all = (await listItems(gw, a, r.json.id, 'limit=100&order=asc')).json;
    assert.equal(all.data.length, 23);
    assert.equal(all.has_more, false);
  });

  for (const model of ['m-anthropic', 'm-openai']) {
    test(`store false -> ${model}: answered, not kept; the header and the body say so (whole and streamed)`, async () => {
      const r = await ok(gw, a, { model, input: '[[mock chunks=2]] hi', store: false });
      assert.equal(r.headers[H], NOT_STORE_FALSE);
      assert.equal(outText(r.json), mockWords(2));
      errorBody(await getResp(gw, a, r.json.id), 404, 'not_found');

      const s = await post(gw, a, { model, input: '[[mock chunks=2]] hi', store: false }, { stream: true });
      assert.equal(s.headers[H], NOT_STORE_FALSE, 'stream header');
      assert.equal(s.final.type, 'response.completed');
      assert.equal(s.text, mockWords(2));
      errorBody(await getResp(gw, a, s.final.response.id), 404, 'not_found');
      // (The mock's native Response always says store true.)
      assert.equal(r.json.store, false, `the body says store ${r.json.store}`);
      assert.equal(s.created.response.store, false, 'response.created says store true');
      assert.equal(s.final.response.store, false, 'response.completed says store true');
    });
  }

  for (const model of ['m-anthropic', 'm-openai']) {
    test(`capture level none (an audit rule with capture none) -> ${model}: nothing kept`, async () => {
      const r = await ok(gw, nocap, { model, input: '[[mock chunks=2]] hi' });
      assert.equal(r.headers[H], NOT_CAPTURE_NONE);
      errorBody(await getResp(gw, nocap, r.json.id), 404, 'not_found');
      // A previous_response_id that was never kept is unknown.
      const c = await post(gw, nocap, { model, input: 'more', previous_response_id: r.json.id });
      errorBody(c, 400, 'previous_response_not_found');

      const s = await post(gw, nocap, { model, input: '[[mock chunks=2]] hi' }, { stream: true });
      assert.equal(s.headers[H], NOT_CAPTURE_NONE, 'stream header');
      assert.equal(s.final.type, 'response.completed');
      errorBody(await getResp(gw, nocap, s.final.response.id), 404, 'not_found');
      assert.equal(r.json.store, false, `the body says store ${r.json.store}`);
      assert.equal(s.created.response.store, false, 'response.created says store true');
      assert.equal(s.final.response.store, false, 'response.completed says store true');
    });
  }

  test('capture levels metadata and full keep the response', async () => {
    for (const [k, what] of [[full, 'full'], [a, 'metadata']]) {
      const r = await ok(gw, k, { model: 'm-anthropic', input: 'hi' });
      assert.equal(r.headers[H], STORED, `capture ${what}`);
      assert.equal(r.json.store, true);
      assert.equal((await getResp(gw, k, r.json.id)).status, 200, `capture ${what}`);
    }
  });

  test('an error answer does not say the request had store false', async () => {
    for (const body of [{ model: 'm-anthropic', input: 'hi', frobnicate: 1 },
      { model: 'm-anthropic', input: 'hi', previous_response_id: 'resp_nope' },
      { model: 'm-anthropic', input: '[[mock status=500]] hi' }]) {
      const r = await post(gw, a, body);
      assert.ok(r.status >= 400, r.text);
      assert.notEqual(r.headers[H], NOT_STORE_FALSE, `${r.status} ${r.text}`);
      assert.notEqual(r.headers[H], STORED);
    }
  });

  test('previous_response_id: a chain of three turns; the provider gets every earlier input and output first', async () => {
    const t1 = await ok(gw, a, { model: 'm-anthropic', input: '[[mock chunks=5]] first question' });
    assert.equal(t1.headers[H], STORED);
    assert.equal(outText(t1.json), mockWords(5));
    assert.equal(t1.json.previous_response_id ?? null, null);

    // No directive in the new input: five words (not the mock's default
    // eight) only if turn 1's input reached the provider.
    const t2 = await ok(gw, a, { model: 'm-anthropic', input: 'second question', previous_response_id: t1.json.id });
    assert.equal(t2.headers[H], STORED);
    assert.equal(t2.json.previous_response_id, t1.json.id);
    assert.equal(outText(t2.json), mockWords(5), 'turn 1 did not reach the provider');
    const hist2 = [user('[[mock chunks=5]] first question'), assistant(mockWords(5)), user('second question')];
    const w2 = await twin(gw, a, { model: 'm-anthropic', input: hist2 });
    assert.equal(t2.json.usage.input_tokens, w2.usage.input_tokens, 'the provider got another history than turn 1 + turn 2');

    const t3 = await ok(gw, a, { model: 'm-anthropic', input: [user('third question')], previous_response_id: t2.json.id });
    assert.equal(t3.json.previous_response_id, t2.json.id);
    assert.equal(outText(t3.json), mockWords(5));
    const hist3 = [...hist2, assistant(mockWords(5)), user('third question')];
    const w3 = await twin(gw, a, { model: 'm-anthropic', input: hist3 });
    assert.equal(t3.json.usage.input_tokens, w3.usage.input_tokens);
    assert.ok(t3.json.usage.input_tokens > t2.json.usage.input_tokens);

    // Each turn keeps its own input only (as OpenAI lists it): the turns
    // before it are read from the chain when it is continued.
    for (const [t, text] of [[t1, '[[mock chunks=5]] first question'], [t2, 'second question'], [t3, 'third question']]) {
      const items = await allItems(gw, a, t.json.id);
      assert.deepEqual(items.map(itemText), [text]);
      assert.equal(items[0].id, `msg_${rid(t.json)}_in0`);
    }
    // A fourth turn still gets all three before it.
    const t4 = await ok(gw, a, { model: 'm-anthropic', input: 'fourth', previous_response_id: t3.json.id });
    const w4 = await twin(gw, a, { model: 'm-anthropic', input: [...hist3, assistant(mockWords(5)), user('fourth')] });
    assert.equal(t4.json.usage.input_tokens, w4.usage.input_tokens, 'turn 4 did not get the whole chain');
    // A turn of the chain deleted: continuing past it is a 400 naming it.
    assert.equal((await delResp(gw, a, t2.json.id)).status, 200);
    const e = errorBody(await post(gw, a, { model: 'm-anthropic', input: 'fifth', previous_response_id: t4.json.id }),
      400, 'previous_response_not_found');
    assert.equal(e.param, 'previous_response_id');
    assert.ok(e.message.includes(t2.json.id) && e.message.includes(t4.json.id), e.message);
    // GET of a continuation is the Response it answered, too.
    assert.deepEqual((await getResp(gw, a, t3.json.id)).json, t3.json);
  });

  test('previous_response_id across provider formats: Anthropic -> OpenAI (native) -> Gemini -> Bedrock', async () => {
    const t1 = await ok(gw, a, { model: 'm-anthropic', input: '[[mock chunks=4]] where do we start' });
    assert.equal(t1.headers['x-tollgate-deployment'], 'ant');
    const before = (await gw.mockStats()).by_api.openai.requests;
    const t2 = await ok(gw, a, { model: 'm-openai', input: 'go on', previous_response_id: t1.json.id });
    assert.equal(t2.headers['x-tollgate-deployment'], 'oai');
    assert.match(t2.json.id, /^resp_mock_/, 'the continuation on OpenAI was not sent natively');
    assert.equal((await gw.mockStats()).by_api.openai.requests, before + 1);
    assert.equal(t2.headers[H], STORED);
    assert.equal(t2.json.store, true);
    assert.equal(outText(t2.json), mockWords(4), 'the Anthropic turn did not reach OpenAI');
    const h2 = [user('[[mock chunks=4]] where do we start'), assistant(mockWords(4)), user('go on')];
    assert.equal(t2.json.usage.input_tokens, (await twin(gw, a, { model: 'm-openai', input: h2 })).usage.input_tokens);

    const t3 = await ok(gw, a, { model: 'm-gemini', input: 'and then', previous_response_id: t2.json.id });
    assert.equal(t3.headers['x-tollgate-deployment'], 'gem');
    assert.equal(t3.json.previous_response_id, t2.json.id);
    assert.equal(outText(t3.json), mockWords(4));
    const h3 = [...h2, assistant(mockWords(4)), user('and then')];
    assert.equal(t3.json.usage.input_tokens, (await twin(gw, a, { model: 'm-gemini', input: h3 })).usage.input_tokens);

    const t4 = await ok(gw, a, { model: 'm-bedrock', input: 'finally', previous_response_id: t3.json.id });
    assert.equal(t4.headers['x-tollgate-deployment'], 'br');
    assert.equal(t4.json.previous_response_id, t3.json.id);
    assert.equal(outText(t4.json), mockWords(4));
    const h4 = [...h3, assistant(mockWords(4)), user('finally')];
    assert.equal(t4.json.usage.input_tokens, (await twin(gw, a, { model: 'm-bedrock', input: h4 })).usage.input_tokens);
    assert.deepEqual((await allItems(gw, a, t4.json.id)).map(itemText), ['finally']);
    assert.deepEqual((await allItems(gw, a, t2.json.id)).map(itemText), ['go on']);
    assert.equal(t2.json.previous_response_id, t1.json.id, 'the native continuation does not echo previous_response_id');
  });

  test('previous_response_id with a function call: its output continues the stored call on another provider', async () => {
    const t1 = await ok(gw, a, { model: 'm-anthropic', tools: [WEATHER], input: '[[mock tool=get_weather]] weather in Paris?' });
    const call = t1.json.output.find((o) => o.type === 'function_call');
    assert.ok(call, JSON.stringify(t1.json.output));
    assert.equal(call.id, `fc_${rid(t1.json)}_0`);
    for (const model of ['m-openai', 'm-gemini']) {
      const t2 = await ok(gw, a, { model, tools: [WEATHER], previous_response_id: t1.json.id,
        input: [{ type: 'function_call_output', call_id: call.call_id, output: 'sunny' }] });
      assert.equal(outText(t2.json), mockWords(8), model);
      const w = await twin(gw, a, { model, tools: [WEATHER], input: [user('[[mock tool=get_weather]] weather in Paris?'),
        { type: 'function_call', call_id: call.call_id, name: 'get_weather', arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: 'sunny' }] });
      assert.equal(t2.json.usage.input_tokens, w.usage.input_tokens, model);
      const items = await allItems(gw, a, t2.json.id);
      assert.deepEqual(items.map((i) => i.type), ['function_call_output']);
      assert.equal(items[0].call_id, call.call_id);
    }
  });

  test('another tenant\'s ids are unknown: GET/DELETE/input_items 404, previous_response_id 400; unknown ids alike', async () => {
    const r = await ok(gw, a, { model: 'm-anthropic', input: '[[mock chunks=2]] mine' });
    const id = r.json.id;
    errorBody(await getResp(gw, b, id), 404, 'not_found');
    errorBody(await listItems(gw, b, id), 404, 'not_found');
    errorBody(await delResp(gw, b, id), 404, 'not_found');
    // B's DELETE did nothing to A's.
    assert.deepEqual((await getResp(gw, a, id)).json, r.json);

    const before = await gw.mockStats();
    for (const [key, pid] of [[b, id], [a, 'resp_req_00000000000000000000000000000000'], [a, 'resp_nope']]) {
      for (const model of ['m-anthropic', 'm-openai']) {
        const e = errorBody(await post(gw, key, { model, input: 'more', previous_response_id: pid }), 400,
          'previous_response_not_found');
        assert.equal(e.type, 'invalid_request_error');
        assert.equal(e.param, 'previous_response_id');
      }
    }
    assert.equal((await gw.mockStats()).requests, before.requests, 'a refused continuation reached the provider');
    // A native OpenAI id that the tenant did not keep is unknown too.
    const n = await ok(gw, a, { model: 'm-openai', input: 'hi', store: false });
    errorBody(await post(gw, a, { model: 'm-openai', input: 'more', previous_response_id: n.json.id }), 400,
      'previous_response_not_found');
  });

  test('item_reference to a stored gateway item is replaced by the item; unknown or another tenant\'s: 400 item_not_found', async () => {
    const t1 = await ok(gw, a, { model: 'm-anthropic', input: '[[mock echo=1]] the magic word is xyzzy' });
    assert.equal(outText(t1.json), 'the magic word is xyzzy');
    const [u1] = await allItems(gw, a, t1.json.id);
    assert.equal(u1.id, `msg_${rid(t1.json)}_in0`);
    // The mock echoes the last user message: the referenced one, so the
    // provider got its text (also when the request goes natively).
    for (const model of ['m-gemini', 'm-openai', 'm-bedrock']) {
      const r = await ok(gw, a, { model, input: [{ type: 'item_reference', id: u1.id }] });
      assert.equal(outText(r.json), 'the magic word is xyzzy', model);
      assert.equal(r.headers[H], STORED);
      // Kept as the item it stood for.
      const [it] = await allItems(gw, a, r.json.id);
      assert.equal(it.type, 'message');
      assert.equal(itemText(it), '[[mock echo=1]] the magic word is xyzzy', model);
    }
    // An output item: the provider gets the assistant's text.
    const o1 = t1.json.output[0];
    assert.equal(o1.id, `msg_${rid(t1.json)}_0`);
    for (const model of ['m-gemini', 'm-openai']) {
      const r = await ok(gw, a, { model, input: [user('[[mock chunks=3]] q'), { type: 'item_reference', id: o1.id }, user('next')] });
      const w = await twin(gw, a, { model, input: [user('[[mock chunks=3]] q'), assistant('the magic word is xyzzy'), user('next')] });
      assert.equal(r.json.usage.input_tokens, w.usage.input_tokens, `${model}: the referenced output was not sent as it was`);
    }
    // A function call by reference, its output by value.
    const t2 = await ok(gw, a, { model: 'm-anthropic', tools: [WEATHER], input: '[[mock tool=get_weather]] weather?' });
    const fc = t2.json.output[0];
    assert.equal(fc.type, 'function_call');
    const r2 = await ok(gw, a, { model: 'm-gemini', tools: [WEATHER], input: [{ type: 'item_reference', id: fc.id },
      { type: 'function_call_output', call_id: fc.call_id, output: 'sunny' }] });
    assert.equal(outText(r2.json), mockWords(8));

    const before = (await gw.mockStats()).requests;
    const unknown = [
      `msg_${rid(t1.json)}_7`, // a stored response without that item
      `msg_${rid(t1.json)}_in5`,
      `msg_${rid(t1.json).slice(0, -12)}ffffffffff00_0`, // no such response (request ids count up)
    ];
    for (const id of unknown) {
      for (const model of ['m-anthropic', 'm-openai']) {
        const e = errorBody(await post(gw, a, { model, input: [{ type: 'item_reference', id }, user('hi')] }), 400, 'item_not_found');
        assert.equal(e.param, 'input', JSON.stringify(e));
      }
    }
    // Another tenant's item.
    for (const id of [u1.id, o1.id]) {
      const e = errorBody(await post(gw, b, { model: 'm-anthropic', input: [{ type: 'item_reference', id }] }), 400, 'item_not_found');
      assert.equal(e.param, 'input');
    }
    assert.equal((await gw.mockStats()).requests, before, 'a refused reference reached the provider');
    // Deleted: gone for references too (items no other response holds).
    const t3 = await ok(gw, a, { model: 'm-anthropic', input: '[[mock chunks=2]] soon deleted' });
    const [u3] = await allItems(gw, a, t3.json.id);
    assert.equal((await delResp(gw, a, t3.json.id)).status, 200);
    for (const id of [u3.id, t3.json.output[0].id]) {
      errorBody(await post(gw, a, { model: 'm-gemini', input: [{ type: 'item_reference', id }] }), 400, 'item_not_found');
    }
  });

  test('item_reference to a native OpenAI answer\'s own item ids resolves once that answer was kept', async () => {
    const n1 = await ok(gw, a, { model: 'm-openai', input: '[[mock echo=1]] native words here' });
    assert.equal(n1.headers[H], STORED);
    const o = n1.json.output[0];
    assert.match(o.id, /^msg_mock_/);
    assert.equal(outText(n1.json), 'native words here');
    const [u] = await allItems(gw, a, n1.json.id);
    for (const model of ['m-anthropic', 'm-openai']) {
      // The input item by reference: the mock echoes it.
      const r = await ok(gw, a, { model, input: [{ type: 'item_reference', id: u.id }] });
      assert.equal(outText(r.json), 'native words here', model);
      // The output item by reference: sent as the assistant's text.
      const q = [user('[[mock chunks=3]] q'), { type: 'item_reference', id: o.id }, user('next')];
      const r2 = await ok(gw, a, { model, input: q });
      const w = await twin(gw, a, { model, input: [user('[[mock chunks=3]] q'), assistant('native words here'), user('next')] });
      assert.equal(r2.json.usage.input_tokens, w.usage.input_tokens, `${model}: the referenced output was not sent as it was`);
      const items = await allItems(gw, a, r2.json.id);
      assert.equal(items[1].id, o.id);
      assert.equal(itemText(items[1]), 'native words here');
    }
    // A native function call by reference, its output by value.
    const n2 = await ok(gw, a, { model: 'm-openai', tools: [WEATHER], input: '[[mock tool=get_weather]] weather?' });
    const fc = n2.json.output[0];
    assert.equal(fc.type, 'function_call');
    assert.match(fc.id, /^fc_mock_/);
    const r3 = await ok(gw, a, { model: 'm-anthropic', tools: [WEATHER], input: [{ type: 'item_reference', id: fc.id },
      { type: 'function_call_output', call_id: fc.call_id, output: 'sunny' }] });
    assert.equal(outText(r3.json), mockWords(8));
    // Not kept (store false): unknown.
    const n3 = await ok(gw, a, { model: 'm-openai', input: 'hi', store: false });
    errorBody(await post(gw, a, { model: 'm-openai', input: [{ type: 'item_reference', id: n3.json.output[0].id }] }), 400,
      'item_not_found');
  });

  test('an item id the tenant never kept (in OpenAI\'s form) is 400 item_not_found, native or translated, never sent on', async () => {
    const s0 = await gw.mockStats();
    for (const model of ['m-anthropic', 'm-openai', 'm-gemini']) {
      const e = errorBody(await post(gw, a, { model, input: [NATIVE_REF, user('hi')] }), 400, 'item_not_found');
      assert.equal(e.param, 'input', JSON.stringify(e));
      assert.equal(e.type, 'invalid_request_error');
    }
    assert.equal((await gw.mockStats()).requests, s0.requests, 'an unknown reference reached a provider');
  });

  for (const model of ['m-anthropic', 'm-openai', 'm-gemini']) {
    test(`a stream is kept -> ${model}: response.completed says store true; a GET made on it finds the Response`, async () => {
      let early;
      const s = await post(gw, a, { model, input: '[[mock chunks=4]] stream me' }, {
        stream: true,
        onEvent: (e) => {
          if (e.json?.type === 'response.completed') early = getResp(gw, a, e.json.response.id);
        },
      });
      assert.equal(s.final.type, 'response.completed', JSON.stringify(s.final));
      assert.equal(s.text, mockWords(4));
      assert.equal(s.final.response.store, true, 'response.completed');
      assert.equal(s.created.response.store, true, 'response.created');
      // Not known before the first byte: the final event tells.
      assert.equal(s.headers[H], undefined, s.headers[H]);
      const g = await early;
      assert.equal(g.status, 200, `a GET made on response.completed: ${g.text}`);
      assert.deepEqual(g.json, s.final.response);
      const after = await getResp(gw, a, s.final.response.id);
      assert.deepEqual(after.json, s.final.response);
      const items = await allItems(gw, a, s.final.response.id);
      assert.deepEqual(items.map(itemText), ['[[mock chunks=4]] stream me']);
    });
  }

  for (const model of ['m-anthropic', 'm-openai']) {
    test(`a streamed continuation -> ${model}: the history goes on, previous_response_id echoed, kept`, async () => {
      const t1 = await ok(gw, a, { model: 'm-gemini', input: '[[mock chunks=6]] start' });
      const s = await post(gw, a, { model, input: 'continue', previous_response_id: t1.json.id }, { stream: true });
      assert.equal(s.final.type, 'response.completed');
      assert.equal(s.text, mockWords(6), 'the streamed continuation did not carry the history');
      assert.equal(s.final.response.store, true);
      const items = await allItems(gw, a, s.final.response.id);
      assert.deepEqual(items.map(itemText), ['continue']);
      assert.equal(s.final.response.previous_response_id, t1.json.id, 'response.completed');
      assert.equal(s.created.response.previous_response_id, t1.json.id, 'response.created');
    });
  }

  test('a guardrail-redacted prompt is stored redacted; the header says so', async () => {
    for (const model of ['m-anthropic', 'm-openai']) {
      const r = await ok(gw, a, { model, input: `pay ${CARD} now [[mock echo=1]]` }, { headers: { 'x-tollgate-meta-guard': '1' } });
      assert.equal(r.headers[H], STORED_REDACTED, model);
      assert.equal(r.json.store, true);
      assert.equal(outText(r.json), 'pay [REDACTED:CARD] now');
      const l = await listItems(gw, a, r.json.id);
      assert.equal(l.status, 200, l.text);
      assert.equal(itemText(l.json.data[0]), 'pay [REDACTED:CARD] now [[mock echo=1]]', model);
      assert.ok(!l.text.includes(CARD), `${model}: the card is stored in the input items`);
      const g = await getResp(gw, a, r.json.id);
      assert.ok(!g.text.includes(CARD));
      assert.deepEqual(g.json, r.json);
      // Continued: the history sent on is the redacted one.
      const c = await ok(gw, a, { model: 'm-gemini', input: [{ type: 'item_reference', id: l.json.data[0].id }] });
      assert.equal(outText(c.json), 'pay [REDACTED:CARD] now');
    }
    // A redacted continuation keeps its own part, redacted; the turn
    // before it is not kept twice.
    const t1 = await ok(gw, a, { model: 'm-anthropic', input: [user('[[mock chunks=2]] hello'), user('and more')] });
    const t2 = await ok(gw, a, { model: 'm-anthropic', instructions: 'be brief', previous_response_id: t1.json.id,
      input: [user(`card ${CARD}`), user('thanks')] }, { headers: { 'x-tollgate-meta-guard': '1' } });
    assert.equal(t2.headers[H], STORED_REDACTED);
    assert.deepEqual((await allItems(gw, a, t2.json.id)).map(itemText), ['card [REDACTED:CARD]', 'thanks']);
  });
});

// ---- quota and retention: gateways of their own ------------------------------

describe('stored responses: the tenant quota and the PDP message size', () => {
  let gw;
  let a;
  let b;
  const QUOTA = 3000;

  before(async () => {
    gw = await startGateway({ deployments: (p) => providerDeployments(p), bundle,
      dataplane: { max_body_bytes: 262144 },
      pdp: { max_message_bytes: 66560, responses: { max_bytes_per_tenant: QUOTA, max_response_bytes: 65536 } } });
    a = (await gw.createKey({ tenant: 'st-a' })).key;
    b = (await gw.createKey({ tenant: 'st-b' })).key;
  });
  after(async () => {
    await gw?.stop();
  });

  test('past pdp.responses.max_bytes_per_tenant: answered 200 but not kept; other tenants unaffected; DELETE frees room', async () => {
    const kept = [];
    let over;
    for (let i = 0; i < 12 && !over; i++) {
      const r = await ok(gw, a, { model: 'm-anthropic', input: `[[mock chunks=3]] question ${i}` });
      assert.equal(outText(r.json), mockWords(3));
      if (r.headers[H] === STORED) {
        assert.equal(r.json.store, true);
        kept.push(r.json);
      } else {
        over = r;
      }
    }
    assert.ok(kept.length >= 1, 'the first response was not kept');
    assert.ok(over, `all 12 responses were kept under a quota of ${QUOTA} bytes`);
    assert.equal(over.headers[H], NOT_QUOTA);
    assert.equal(over.json.store, false);
    errorBody(await getResp(gw, a, over.json.id), 404, 'not_found');
    for (const k of kept) assert.deepEqual((await getResp(gw, a, k.id)).json, k);

    // Native and streamed alike.
    const n = await ok(gw, a, { model: 'm-openai', input: 'hi' });
    assert.equal(n.headers[H], NOT_QUOTA);
    assert.equal(n.json.store, false);
    const s = await post(gw, a, { model: 'm-anthropic', input: '[[mock chunks=3]] streamed' }, { stream: true });
    assert.equal(s.final.type, 'response.completed');
    assert.equal(s.text, mockWords(3));
    assert.equal(s.final.response.store, false, 'an over-quota stream says it was kept');
    errorBody(await getResp(gw, a, s.final.response.id), 404, 'not_found');

    // The quota is per tenant.
    const rb = await ok(gw, b, { model: 'm-anthropic', input: '[[mock chunks=3]] question 0' });
    assert.equal(rb.headers[H], STORED);

    // Deleting frees what they held.
    for (const k of kept) assert.equal((await delResp(gw, a, k.id)).status, 200);
    const again = await ok(gw, a, { model: 'm-anthropic', input: '[[mock chunks=3]] question again' });
    assert.equal(again.headers[H], STORED);
    assert.equal((await getResp(gw, a, again.json.id)).status, 200);
  });

  test('a response over pdp.responses.max_response_bytes is answered, not kept', async () => {
    const big = `[[mock chunks=2]] ${'lorem ipsum '.repeat(6000)}`; // 72 kB of input items
    const r = await ok(gw, b, { model: 'm-anthropic', input: big });
    assert.equal(outText(r.json), mockWords(2));
    assert.equal(r.headers[H], NOT_TOO_LARGE);
    assert.equal(r.json.store, false);
    errorBody(await getResp(gw, b, r.json.id), 404, 'not_found');
  });
});

describe('stored responses: retention', () => {
  let gw;
  let a;
  const RETENTION_S = 2;

  before(async () => {
    gw = await startGateway({ deployments: (p) => providerDeployments(p), bundle,
      pdp: { responses: { retention_seconds: RETENTION_S } } });
    a = (await gw.createKey({ tenant: 'st-a' })).key;
  });
  after(async () => {
    await gw?.stop();
  });

  test('past pdp.responses.retention_seconds a response is gone: GET and input_items 404, previous_response_id 400', async () => {
    const r = await ok(gw, a, { model: 'm-anthropic', input: '[[mock chunks=2]] short-lived' });
    const tAnswer = Date.now();
    assert.equal(r.headers[H], STORED);
    assert.equal((await getResp(gw, a, r.json.id)).status, 200, 'gone before its time');
    const n = await ok(gw, a, { model: 'm-openai', input: 'native short-lived' });
    const tLast = Date.now();
    assert.ok(tLast - tAnswer < RETENTION_S * 1000, 'too slow to test a retention of 2 s');
    assert.equal((await getResp(gw, a, n.json.id)).status, 200);
    await sleep(tLast + RETENTION_S * 1000 + 400 - Date.now());
    for (const id of [r.json.id, n.json.id]) {
      errorBody(await getResp(gw, a, id), 404, 'not_found');
      errorBody(await listItems(gw, a, id), 404, 'not_found');
      errorBody(await post(gw, a, { model: 'm-anthropic', input: 'more', previous_response_id: id }), 400,
        'previous_response_not_found');
    }
    // A new one is there again.
    const r2 = await ok(gw, a, { model: 'm-anthropic', input: 'fresh' });
    assert.equal((await getResp(gw, a, r2.json.id)).status, 200);
  });
});
