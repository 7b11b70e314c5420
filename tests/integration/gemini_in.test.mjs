// gemini_in.test.mjs - Tollgate's Gemini API (POST /v1beta/models/{model}:
// generateContent, :streamGenerateContent?alt=sse, :countTokens) on the
// wire: answers and streams in Gemini's shape, tools, countTokens from the
// gateway's estimate, errors in Google's shape (bad JSON, unknown field,
// bad key, policy deny, budget and rate limits with retry info), the key
// taken from x-goog-api-key or ?key= and never logged or recorded, and
// usage metered exactly as the same chat completion.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  decisionRecords, httpRequest, mockWords, openStream, pollUntil, readSse, startGateway,
} from './harness.mjs';

// Guardrails chosen per request by the x-tollgate-meta-guard header.
const guard = (v) => ({ all: [{ exists: 'request.metadata.guard' }, { eq: ['request.metadata.guard', v] }] });
const CARD = '4111 1111 1111 1111';
const AWS = 'AKIAZ7QK3M2XW9PL4TRE';

const bundle = {
  'bundle.json': { name: 'gemini-in', revision: 1, default: 'deny' },
  'gem.policy.json': {
    rules: [
      { id: 'allow-all', kind: 'access', effect: 'allow' },
      { id: 'no-small', kind: 'access', effect: 'deny', when: { eq: ['request.model', 'mock-small'] } },
      {
        id: 'broke', kind: 'budget', scope: 'tenant', window: 'daily', limit_usd: 0.000001,
        when: { all: [{ eq: ['tenant.id', 'broke-co'] }, { eq: ['request.model', 'gpt-4o-mini'] }] },
      },
      { id: 'rpm-1', kind: 'rate_limit', scope: 'key', rpm: 1, when: { eq: ['tenant.id', 'rpm-co'] } },
      { id: 'in-redact', kind: 'guardrail', when: guard('in'), stages: ['input'], detectors: ['pii.card'], action: 'redact' },
      { id: 'out-redact', kind: 'guardrail', when: guard('out'), stages: ['output'], detectors: ['pii.card'], action: 'redact' },
      { id: 'out-block', kind: 'guardrail', when: guard('outblock'), stages: ['output'], detectors: ['secret'], action: 'block' },
    ],
  },
};

const path = (model, method) => `/v1beta/models/${model}:${method}`;

/** google checks a Google-shaped error answer and returns its error. */
function google(r, status, grpc, reason) {
  assert.equal(r.status, status, `expected HTTP ${status}, got ${r.status}: ${r.text}`);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const e = r.json?.error;
  assert.ok(e && typeof e === 'object', `no Google error object: ${r.text}`);
  assert.equal(e.code, status, r.text);
  assert.equal(e.status, grpc, r.text);
  assert.equal(typeof e.message, 'string');
  assert.ok(e.message.length > 0);
  assert.equal(r.json.error.type, undefined, `an OpenAI error leaked: ${r.text}`);
  if (reason !== undefined) {
    const info = e.details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.ErrorInfo');
    assert.equal(info?.reason, reason, r.text);
  }
  return e;
}

describe('Gemini API in', () => {
  let gw;
  let key;

  const gem = (model, method, body, { headers = {}, query = '' } = {}) => httpRequest(gw.port, {
    method: 'POST',
    path: `${path(model, method)}${query}`,
    headers: { 'content-type': 'application/json', 'x-goog-api-key': key, ...headers },
    body,
  });

  before(async () => {
    gw = await startGateway({ bundle });
    key = (await gw.createKey({ tenant: 'gem-co' })).key;
  });

  after(async () => {
    await gw?.stop();
  });

  test('generateContent: one candidate in Gemini\'s shape, with usage and the model', async () => {
    const r = await gem('gpt-4o-mini', 'generateContent', {
      contents: [{ role: 'user', parts: [{ text: '[[mock chunks=3]] hi' }] }],
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      generationConfig: { maxOutputTokens: 30, temperature: 0.1, topK: 5, stopSequences: ['END'] },
      safetySettings: [{ category: 'HARM_CATEGORY_HARASSMENT', threshold: 'BLOCK_NONE' }],
    });
    assert.equal(r.status, 200, r.text);
    const c = r.json.candidates;
    assert.equal(c.length, 1);
    assert.deepEqual(c[0].content, { parts: [{ text: mockWords(3) }], role: 'model' });
    assert.equal(c[0].finishReason, 'STOP');
    const u = r.json.usageMetadata;
    assert.ok(u.promptTokenCount > 0);
    assert.equal(u.totalTokenCount, u.promptTokenCount + u.candidatesTokenCount);
    assert.equal(r.json.modelVersion, 'gpt-4o-mini');
    assert.ok(r.headers['x-request-id']);
  });

  test('Google\'s curl examples work as written: snake_case names, a single Content, the key in ?key=', async () => {
    const r = await httpRequest(gw.port, {
      method: 'POST', path: `${path('gpt-4o-mini', 'generateContent')}?key=${encodeURIComponent(key)}`,
      headers: { 'content-type': 'application/json' },
      body: {
        system_instruction: { parts: { text: 'You are a cat.' } },
        contents: { parts: { text: '[[mock chunks=2]] hello' } },
        generation_config: { max_output_tokens: 20 },
      },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.candidates[0].content.parts[0].text, mockWords(2));
  });

  test('maxOutputTokens reached: finishReason MAX_TOKENS', async () => {
    const r = await gem('gpt-4o-mini', 'generateContent', {
      contents: [{ parts: [{ text: '[[mock chunks=50]] long' }] }], generationConfig: { maxOutputTokens: 5 },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.candidates[0].finishReason, 'MAX_TOKENS');
  });

  test('streamGenerateContent?alt=sse: text chunks, then one with finishReason and usageMetadata', async () => {
    const s = await openStream(gw.port, {
      path: `${path('gpt-4o-mini', 'streamGenerateContent')}?alt=sse`,
      headers: { 'x-goog-api-key': key },
      body: { contents: [{ role: 'user', parts: [{ text: '[[mock chunks=4]] go' }] }] },
    });
    assert.equal(s.status, 200);
    assert.match(String(s.headers['content-type']), /^text\/event-stream/);
    const { events, error } = await readSse(s.res, s.t0);
    assert.equal(error, undefined);
    const chunks = events.map((e) => JSON.parse(e.data)); // no [DONE]: Gemini has none
    const text = chunks.map((c) => c.candidates[0].content.parts.map((p) => p.text ?? '').join('')).join('');
    assert.equal(text, mockWords(4));
    const last = chunks.at(-1);
    assert.equal(last.candidates[0].finishReason, 'STOP');
    assert.ok(last.usageMetadata.candidatesTokenCount > 0);
    for (const c of chunks.slice(0, -1)) assert.equal(c.candidates[0].finishReason, undefined);
  });

  test('streamGenerateContent without alt=sse is a 400 saying to use it', async () => {
    const r = await gem('gpt-4o-mini', 'streamGenerateContent', { contents: [{ parts: [{ text: 'hi' }] }] });
    const e = google(r, 400, 'INVALID_ARGUMENT');
    assert.match(e.message, /alt=sse/);
  });

  test('tools: functionDeclarations in, a functionCall with args out; ANY with one name forces it', async () => {
    const tools = [{ functionDeclarations: [{ name: 'get_weather', parameters: { type: 'OBJECT', properties: { city: { type: 'STRING' } } } }] }];
    const r = await gem('gpt-4o-mini', 'generateContent', {
      contents: [{ role: 'user', parts: [{ text: '[[mock tool=get_weather]] weather?' }] }],
      tools,
      toolConfig: { functionCallingConfig: { mode: 'ANY', allowedFunctionNames: ['get_weather'] } },
    });
    assert.equal(r.status, 200, r.text);
    const parts = r.json.candidates[0].content.parts;
    const fc = parts.find((p) => p.functionCall)?.functionCall;
    assert.equal(fc.name, 'get_weather');
    assert.deepEqual(fc.args, { city: 'Paris', n: 1 });
    assert.equal(r.json.candidates[0].finishReason, 'STOP');
  });

  test('a functionResponse without an earlier functionCall is refused, naming the field', async () => {
    const r = await gem('gpt-4o-mini', 'generateContent', {
      contents: [{ role: 'user', parts: [{ functionResponse: { name: 'f', response: {} } }] }],
    });
    const e = google(r, 400, 'INVALID_ARGUMENT');
    assert.match(e.message, /contents\[0\]\.parts\[0\]\.functionResponse/);
  });

  test('countTokens: the gateway\'s estimate, no upstream call, still policy-checked', async () => {
    const before = await gw.mockStats();
    const r = await gem('gpt-4o-mini', 'countTokens', { contents: [{ parts: [{ text: 'hello world '.repeat(50) }] }] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['totalTokens']);
    assert.ok(r.json.totalTokens > 50);
    const r2 = await gem('gpt-4o-mini', 'countTokens', { generateContentRequest: { contents: [{ parts: [{ text: 'hi' }] }] } });
    assert.equal(r2.status, 200, r2.text);
    assert.ok(r2.json.totalTokens < r.json.totalTokens);
    assert.deepEqual(await gw.mockStats(), before);
    // Recorded as an allowed request with no tokens and no cost.
    const id = r.headers['x-request-id'];
    const recs = await pollUntil(async () => {
      const d = await decisionRecords(gw);
      return d.byId.has(id) ? d : null;
    }, { what: 'the countTokens request to be recorded' });
    const rec = recs.byId.get(id);
    assert.equal(rec.verdict, 'allow', JSON.stringify(rec));
    assert.equal(rec.cost_micro_usd ?? 0, 0, JSON.stringify(rec));
    assert.equal(rec.tokens?.completion ?? 0, 0, JSON.stringify(rec));
    google(await gem('mock-small', 'countTokens', { contents: [{ parts: [{ text: 'hi' }] }] }), 403, 'PERMISSION_DENIED');
  });

  test('bad input: not JSON, an unknown field, candidateCount 2, an unknown method', async () => {
    const bad = await gem('gpt-4o-mini', 'generateContent', '{"contents": [');
    google(bad, 400, 'INVALID_ARGUMENT', 'invalid_json');
    const unk = await gem('gpt-4o-mini', 'generateContent', { contents: [{ parts: [{ text: 'hi' }] }], frobnicate: 1 });
    const e = google(unk, 400, 'INVALID_ARGUMENT', 'invalid_value');
    assert.match(e.message, /Unknown name "frobnicate"/);
    const deep = await gem('gpt-4o-mini', 'generateContent', { contents: [{ parts: [{ text: 'hi' }] }], generationConfig: { thinkingBudget: 3 } });
    assert.match(google(deep, 400, 'INVALID_ARGUMENT').message, /thinkingBudget/);
    const cc = await gem('gpt-4o-mini', 'generateContent', { contents: [{ parts: [{ text: 'hi' }] }], generationConfig: { candidateCount: 2 } });
    assert.match(google(cc, 400, 'INVALID_ARGUMENT').message, /candidateCount/);
    google(await gem('gpt-4o-mini', 'embedContent', {}), 404, 'NOT_FOUND', 'unknown_url');
    google(await httpRequest(gw.port, { path: '/v1beta/models', headers: { 'x-goog-api-key': key } }), 404, 'NOT_FOUND');
    // A model name longer than any in the catalog is not cut to one that is.
    google(await gem(`gpt-4o-mini${'x'.repeat(200)}`, 'generateContent', { contents: [{ parts: [{ text: 'hi' }] }] }),
      404, 'NOT_FOUND', 'unknown_url');
    const nest = `{"contents":[{"parts":[{"functionResponse":{"name":"f","response":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}}]}]}`;
    google(await gem('gpt-4o-mini', 'generateContent', nest), 400, 'INVALID_ARGUMENT');
    google(await httpRequest(gw.port, {
      method: 'POST', path: path('gpt-4o-mini', 'generateContent'), headers: { 'x-goog-api-key': key, 'content-type': 'text/plain' }, body: '{}',
    }), 415, 'INVALID_ARGUMENT', 'unsupported_media_type');
    const get = await httpRequest(gw.port, { path: path('gpt-4o-mini', 'generateContent'), headers: { 'x-goog-api-key': key } });
    google(get, 405, 'INVALID_ARGUMENT');
  });

  test('keys: a bad or missing key is 401 UNAUTHENTICATED; ?key= and Bearer work too', async () => {
    const body = { contents: [{ parts: [{ text: 'hi' }] }] };
    google(await gem('gpt-4o-mini', 'generateContent', body, { headers: { 'x-goog-api-key': 'tg-wrong' } }), 401, 'UNAUTHENTICATED');
    const none = await httpRequest(gw.port, {
      method: 'POST', path: path('gpt-4o-mini', 'generateContent'), headers: { 'content-type': 'application/json' }, body,
    });
    assert.match(google(none, 401, 'UNAUTHENTICATED', 'missing_api_key').message, /x-goog-api-key/);
    const q = await httpRequest(gw.port, {
      method: 'POST', path: `${path('gpt-4o-mini', 'generateContent')}?key=${encodeURIComponent(key)}`,
      headers: { 'content-type': 'application/json' }, body,
    });
    assert.equal(q.status, 200, q.text);
    const b = await httpRequest(gw.port, {
      method: 'POST', path: path('gpt-4o-mini', 'generateContent'),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body,
    });
    assert.equal(b.status, 200, b.text);
    // The key sent in the URL is in no decision record (gw.stop checks
    // every log for it).
    const recs = await pollUntil(async () => {
      const d = await decisionRecords(gw);
      return d.byId.has(q.headers['x-request-id']) ? d : null;
    }, { what: 'the ?key= request to be recorded' });
    assert.ok(!JSON.stringify(recs.list).includes(key));
    assert.equal(recs.byId.get(q.headers['x-request-id']).endpoint, 'chat.completions');
  });

  test('policy deny is 403 PERMISSION_DENIED; budget and rate limits are 429 RESOURCE_EXHAUSTED with retry info', async () => {
    const body = { contents: [{ parts: [{ text: 'hi' }] }] };
    google(await gem('mock-small', 'generateContent', body), 403, 'PERMISSION_DENIED', 'policy_denied');
    const broke = (await gw.createKey({ tenant: 'broke-co' })).key;
    google(await gem('gpt-4o-mini', 'generateContent', body, { headers: { 'x-goog-api-key': broke } }),
      429, 'RESOURCE_EXHAUSTED', 'budget_exceeded');
    const rpm = (await gw.createKey({ tenant: 'rpm-co' })).key;
    const first = await gem('gpt-4o-mini', 'generateContent', body, { headers: { 'x-goog-api-key': rpm } });
    assert.equal(first.status, 200, first.text);
    const second = await gem('gpt-4o-mini', 'generateContent', body, { headers: { 'x-goog-api-key': rpm } });
    const e = google(second, 429, 'RESOURCE_EXHAUSTED', 'rate_limit_exceeded');
    const retry = e.details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.RetryInfo');
    assert.match(retry?.retryDelay ?? '', /^\d+s$/, second.text);
    assert.ok(Number(second.headers['retry-after']) >= 1);
  });

  test('an upstream failure mid-stream ends with Google\'s error object, not a silent cut', async () => {
    const s = await openStream(gw.port, {
      path: `${path('gpt-4o-mini', 'streamGenerateContent')}?alt=sse`,
      headers: { 'x-goog-api-key': key },
      body: { contents: [{ parts: [{ text: '[[mock chunks=5 error_after=2]] go' }] }] },
    });
    assert.equal(s.status, 200);
    const { events } = await readSse(s.res, s.t0);
    const last = JSON.parse(events.at(-1).data);
    assert.ok(last.error, events.at(-1).data);
    assert.ok(last.error.code >= 400 && typeof last.error.status === 'string', events.at(-1).data);
  });

  test('guardrails apply as to a chat: input redacted, a streamed card redacted, a secret blocks in Google\'s shape', async () => {
    const echo = await gem('gpt-4o-mini', 'generateContent',
      { contents: [{ parts: [{ text: `Charge ${CARD} now [[mock echo=1 chunks=1]]` }] }] },
      { headers: { 'x-tollgate-meta-guard': 'in' } });
    assert.equal(echo.status, 200, echo.text);
    assert.equal(echo.json.candidates[0].content.parts[0].text, 'Charge [REDACTED:CARD] now');

    const streamOf = async (text, g) => {
      const s = await openStream(gw.port, {
        path: `${path('gpt-4o-mini', 'streamGenerateContent')}?alt=sse`,
        headers: { 'x-goog-api-key': key, 'x-tollgate-meta-guard': g },
        body: { contents: [{ parts: [{ text }] }] },
      });
      assert.equal(s.status, 200);
      return (await readSse(s.res, s.t0)).events;
    };
    const red = await streamOf(`card ${CARD} ok [[mock echo=1 chunks=3]]`, 'out');
    const text = red.map((e) => JSON.parse(e.data)).map((c) => c.candidates?.[0]?.content?.parts?.[0]?.text ?? '').join('');
    assert.equal(text, 'card [REDACTED:CARD] ok');
    for (const e of red) assert.ok(!e.data.includes('1111'), e.data);

    const blocked = await streamOf(`here: ${AWS} and more [[mock echo=1 chunks=3]]`, 'outblock');
    const last = JSON.parse(blocked.at(-1).data);
    assert.equal(last.error?.status, 'INVALID_ARGUMENT', blocked.at(-1).data);
    assert.equal(last.error.details[0].reason, 'guardrail_blocked');
    for (const e of blocked) assert.ok(!e.data.includes('AKIA'), e.data);

    const whole = await gem('gpt-4o-mini', 'generateContent',
      { contents: [{ parts: [{ text: `x ${AWS} [[mock echo=1]]` }] }] }, { headers: { 'x-tollgate-meta-guard': 'outblock' } });
    google(whole, 400, 'INVALID_ARGUMENT', 'guardrail_blocked');
    assert.ok(!whole.text.includes('AKIA'));
  });

  test('usage is metered exactly as the same chat completion', async () => {
    const gk = await gw.createKey({ tenant: 'gem-usage' });
    const ck = await gw.createKey({ tenant: 'chat-usage' });
    const text = '[[mock chunks=7]] count me';
    for (const stream of [false, true]) {
      const g = stream
        ? await readSse((await openStream(gw.port, {
          path: `${path('gpt-4o-mini', 'streamGenerateContent')}?alt=sse`,
          headers: { 'x-goog-api-key': gk.key }, body: { contents: [{ role: 'user', parts: [{ text }] }] },
        })).res, 0)
        : await gem('gpt-4o-mini', 'generateContent', { contents: [{ role: 'user', parts: [{ text }] }] },
          { headers: { 'x-goog-api-key': gk.key } });
      assert.ok(stream ? g.events.length > 0 : g.status === 200);
      const c = await gw.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }], stream }, { key: ck.key, stream });
      assert.equal(c.status, 200);
    }
    const [g, c] = await pollUntil(async () => {
      const m = await gw.metrics();
      const a = await gw.spendTenant('gem-usage');
      const b = await gw.spendTenant('chat-usage');
      return m.tollgate_usage_spool_pending === 0 && a.requests >= 2 && b.requests >= 2 ? [a, b] : null;
    }, { timeoutMs: 20_000, intervalMs: 200, what: 'both tenants to show 2 requests' });
    assert.equal(g.requests, 2);
    assert.ok(g.prompt_tokens > 0 && g.completion_tokens > 0);
    assert.equal(g.prompt_tokens, c.prompt_tokens);
    assert.equal(g.completion_tokens, c.completion_tokens);
    assert.equal(g.cost_micro_usd, c.cost_micro_usd);
  });
});
