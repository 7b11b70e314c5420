// mock_llm.test.mjs - the mock provider alone, speaking each wire format it
// offers: OpenAI chat (with tool calls), legacy completions, embeddings,
// Azure OpenAI, Anthropic Messages and Gemini generateContent, stream and
// not, with the fault controls (status, context, content_filter,
// error_after), the echo control and the per-API counters in /_mock/stats.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import { SseParser, bin, httpRequest, mockWords, pollUntil, withTimeout } from './harness.mjs';

const KEY = 'sk-mock-test-key';
const TOOLS_OPENAI = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
const TOOLS_ANT = [{ name: 'get_weather', input_schema: { type: 'object' } }];
const TOOLS_GEM = [{ functionDeclarations: [{ name: 'get_weather' }] }];
const TOOL_ARGS = { city: 'Paris', n: 1 };

let mock;
let port;
let stderr = '';

before(async () => {
  mock = spawn(bin('tollgate-mock-llm'), ['--port', '0', '--api-key', KEY], { stdio: ['ignore', 'ignore', 'pipe'] });
  mock.stderr.setEncoding('utf8');
  mock.stderr.on('data', (d) => { stderr += d; });
  mock.exited = new Promise((resolve) => mock.on('exit', (code, signal) => resolve({ code, signal })));
  port = await pollUntil(() => {
    if (mock.exitCode !== null) throw new Error(`mock exited: ${stderr}`);
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
    return m ? Number(m[1]) : null;
  }, { timeoutMs: 30_000, what: 'the mock to listen' });
});

after(async () => {
  mock.kill('SIGTERM');
  const res = await withTimeout(mock.exited, 20_000);
  if (res === null) mock.kill('SIGKILL');
  assert.deepEqual(res, { code: 0, signal: null }, `mock did not exit cleanly:\n${stderr}`);
});

function post(path, body, headers = {}) {
  return httpRequest(port, { method: 'POST', path, body, headers: { 'content-type': 'application/json', ...headers } });
}

/** sse splits a stream's text into {event, data, json} records. */
function sse(r) {
  assert.equal(r.status, 200, r.text);
  assert.match(String(r.headers['content-type']), /^text\/event-stream/);
  const events = new SseParser().push(r.text);
  return events.map(({ raw, data }) => {
    const ev = /^event: ?(.*)$/m.exec(raw);
    let json;
    try {
      json = JSON.parse(data);
    } catch {
      json = undefined;
    }
    return { event: ev ? ev[1] : undefined, data, json };
  });
}

const oa = (body, headers = {}) => post('/v1/chat/completions', body, { authorization: `Bearer ${KEY}`, ...headers });
const ant = (body, headers = {}) =>
  post('/v1/messages', body, { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', ...headers });
const gem = (model, body, headers = {}, stream = false) =>
  post(`/v1beta/models/${model}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`, body,
    { 'x-goog-api-key': KEY, ...headers });
const user = (content) => [{ role: 'user', content }];

function antError(r, status, type) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.type, 'error', r.text);
  assert.equal(r.json.error.type, type, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  return r.json.error;
}

function gemError(r, status, gstatus) {
  assert.equal(r.status, status, r.text);
  assert.equal(r.json?.error?.code, status, r.text);
  assert.equal(r.json.error.status, gstatus, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  return r.json.error;
}

describe('OpenAI chat tool calls', () => {
  test('non-stream: a tool call to the named tool with fixed arguments', async () => {
    const r = await oa({ model: 'gpt-4o-mini', tools: TOOLS_OPENAI, messages: user('weather? [[mock tool=get_weather]]') });
    assert.equal(r.status, 200, r.text);
    const c = r.json.choices[0];
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.content, null);
    assert.equal(c.message.tool_calls.length, 1);
    const call = c.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.match(call.id, /^call_/);
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), TOOL_ARGS);
    assert.equal(r.json.usage.completion_tokens, 4);
  });

  test('stream: id and name first, then argument fragments, finish tool_calls', async () => {
    const r = await oa({ model: 'm', stream: true, tools: TOOLS_OPENAI, messages: user('[[mock tool=get_weather]]') });
    const ev = sse(r);
    assert.equal(ev.at(-1).data, '[DONE]');
    const first = ev[0].json.choices[0].delta;
    assert.equal(first.role, 'assistant');
    assert.equal(first.tool_calls[0].index, 0);
    assert.equal(first.tool_calls[0].function.name, 'get_weather');
    assert.match(first.tool_calls[0].id, /^call_/);
    const frags = ev.slice(1, -2).map((e) => e.json.choices[0].delta.tool_calls[0].function.arguments);
    assert.ok(frags.length > 1, `expected several fragments, got ${frags.length}`);
    assert.deepEqual(JSON.parse(frags.join('')), TOOL_ARGS);
    assert.equal(ev.at(-2).json.choices[0].finish_reason, 'tool_calls');
  });

  test('tool and assistant tool_calls messages are accepted; the loop ends with text', async () => {
    const messages = [
      { role: 'user', content: 'weather? [[mock tool=get_weather]]' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
    ];
    const r = await oa({ model: 'm', tools: TOOLS_OPENAI, messages });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, mockWords(8));
    assert.equal(r.json.choices[0].finish_reason, 'stop');
  });

  test('no tools in the request: the tool control is ignored', async () => {
    const r = await oa({ model: 'm', messages: user('[[mock tool=get_weather]]') });
    assert.equal(r.json.choices[0].message.content, mockWords(8));
  });

  test('a tool message without tool_call_id and a bad tool name are 400', async () => {
    let r = await oa({ model: 'm', messages: [{ role: 'tool', content: 'x' }] });
    assert.equal(r.status, 400, r.text);
    r = await oa({ model: 'm', tools: TOOLS_OPENAI, messages: user('[[mock tool=bad.name]]') });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /tool/);
  });

  test('context and content_filter controls', async () => {
    let r = await oa({ model: 'm', messages: user('a fairly long prompt [[mock context=5]]') });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'context_length_exceeded');
    assert.match(r.json.error.message, /maximum context length is 5 tokens/);
    r = await oa({ model: 'm', messages: user('hi') }, { 'x-mock-control': 'content_filter=1' });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.json.error.code, 'content_filter');
  });

  test('error_after sends an error event mid-stream', async () => {
    const ev = sse(await oa({ model: 'm', stream: true, messages: user('[[mock error_after=2]]') }));
    assert.equal(ev.length, 1 + 2 + 1);
    assert.equal(ev.at(-1).json.error.type, 'server_error');
  });
});

describe('Anthropic Messages', () => {
  test('non-stream text reply with usage', async () => {
    const r = await ant({ model: 'claude-x', max_tokens: 100, system: [{ type: 'text', text: 'be brief' }],
      messages: user([{ type: 'text', text: 'hi' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } }]),
      temperature: 0.5, metadata: { user_id: 'u1' } });
    assert.equal(r.status, 200, r.text);
    const m = r.json;
    assert.match(m.id, /^msg_/);
    assert.equal(m.type, 'message');
    assert.equal(m.role, 'assistant');
    assert.equal(m.model, 'claude-x');
    assert.deepEqual(m.content, [{ type: 'text', text: mockWords(8) }]);
    assert.equal(m.stop_reason, 'end_turn');
    assert.equal(m.stop_sequence, null);
    assert.deepEqual(Object.keys(m.usage).sort(),
      ['cache_creation_input_tokens', 'cache_read_input_tokens', 'input_tokens', 'output_tokens']);
    assert.equal(m.usage.output_tokens, 8);
    assert.ok(m.usage.input_tokens > 0);
  });

  test('max_tokens and stop_sequences cut the reply', async () => {
    let r = await ant({ model: 'c', max_tokens: 3, messages: user('hi') });
    assert.equal(r.json.stop_reason, 'max_tokens');
    assert.equal(r.json.content[0].text, 'w0 w1 w2 ');
    assert.equal(r.json.usage.output_tokens, 3);
    r = await ant({ model: 'c', max_tokens: 100, stop_sequences: ['w2'], messages: user('hi') });
    assert.equal(r.json.stop_reason, 'stop_sequence');
    assert.equal(r.json.stop_sequence, 'w2');
    assert.equal(r.json.content[0].text, 'w0 w1 ');
  });

  test('stream: the documented event sequence', async () => {
    const ev = sse(await ant({ model: 'c', max_tokens: 100, stream: true, messages: user('hi [[mock chunks=3]]') }));
    assert.deepEqual(ev.map((e) => e.event), ['message_start', 'content_block_start', 'ping',
      'content_block_delta', 'content_block_delta', 'content_block_delta', 'content_block_stop',
      'message_delta', 'message_stop']);
    for (const e of ev) assert.equal(e.json.type, e.event);
    assert.equal(ev[0].json.message.usage.input_tokens > 0, true);
    assert.deepEqual(ev[0].json.message.content, []);
    assert.deepEqual(ev[1].json.content_block, { type: 'text', text: '' });
    const text = ev.filter((e) => e.event === 'content_block_delta').map((e) => {
      assert.equal(e.json.delta.type, 'text_delta');
      return e.json.delta.text;
    }).join('');
    assert.equal(text, mockWords(3));
    assert.equal(ev[7].json.delta.stop_reason, 'end_turn');
    assert.equal(ev[7].json.usage.output_tokens, 3);
  });

  test('tool_use: non-stream block and streamed input_json_delta fragments', async () => {
    const messages = user('weather? [[mock tool=get_weather]]');
    let r = await ant({ model: 'c', max_tokens: 100, tools: TOOLS_ANT, tool_choice: { type: 'auto' }, messages });
    assert.equal(r.json.stop_reason, 'tool_use');
    assert.equal(r.json.content[0].type, 'tool_use');
    assert.equal(r.json.content[0].name, 'get_weather');
    assert.match(r.json.content[0].id, /^toolu_/);
    assert.deepEqual(r.json.content[0].input, TOOL_ARGS);

    const ev = sse(await ant({ model: 'c', max_tokens: 100, tools: TOOLS_ANT, stream: true, messages }));
    const start = ev.find((e) => e.event === 'content_block_start').json.content_block;
    assert.equal(start.type, 'tool_use');
    assert.equal(start.name, 'get_weather');
    assert.deepEqual(start.input, {});
    const frags = ev.filter((e) => e.event === 'content_block_delta').map((e) => {
      assert.equal(e.json.delta.type, 'input_json_delta');
      return e.json.delta.partial_json;
    });
    assert.ok(frags.length > 1);
    assert.deepEqual(JSON.parse(frags.join('')), TOOL_ARGS);
    assert.equal(ev.find((e) => e.event === 'message_delta').json.delta.stop_reason, 'tool_use');
  });

  test('a tool_result turn ends the tool loop', async () => {
    const messages = [
      { role: 'user', content: 'weather? [[mock tool=get_weather]]' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny' }] },
    ];
    const r = await ant({ model: 'c', max_tokens: 100, tools: TOOLS_ANT, messages });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.stop_reason, 'end_turn');
  });

  test('auth, anthropic-version and max_tokens are required', async () => {
    const body = { model: 'c', max_tokens: 10, messages: user('hi') };
    antError(await post('/v1/messages', body, { 'anthropic-version': '2023-06-01' }), 401, 'authentication_error');
    antError(await ant(body, { 'x-api-key': 'wrong' }), 401, 'authentication_error');
    const e = antError(await post('/v1/messages', body, { 'x-api-key': KEY }), 400, 'invalid_request_error');
    assert.match(e.message, /anthropic-version/);
    assert.match(antError(await ant({ model: 'c', messages: user('hi') }), 400, 'invalid_request_error').message, /max_tokens/);
  });

  test('injected statuses map to Anthropic error types', async () => {
    const body = { model: 'c', max_tokens: 10, messages: user('hi') };
    const r = await ant(body, { 'x-mock-control': 'status=429' });
    antError(r, 429, 'rate_limit_error');
    assert.equal(r.headers['retry-after'], '1');
    antError(await ant(body, { 'x-mock-control': 'status=529' }), 529, 'overloaded_error');
    antError(await ant(body, { 'x-mock-control': 'status=500' }), 500, 'api_error');
    antError(await ant(body, { 'x-mock-control': 'status=404' }), 404, 'not_found_error');
  });

  test('context, content_filter (refusal) and an in-stream error', async () => {
    const e = antError(await ant({ model: 'c', max_tokens: 10, messages: user('hello there [[mock context=4]]') }),
      400, 'invalid_request_error');
    assert.match(e.message, /^prompt is too long: \d+ tokens > 4 maximum$/);
    const r = await ant({ model: 'c', max_tokens: 10, messages: user('hi [[mock content_filter=1]]') });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.stop_reason, 'refusal');
    const ev = sse(await ant({ model: 'c', max_tokens: 10, stream: true, messages: user('hi [[mock error_after=1]]') }));
    assert.equal(ev.at(-1).event, 'error');
    assert.equal(ev.at(-1).json.error.type, 'overloaded_error');
    assert.equal(ev.filter((e) => e.event === 'content_block_delta').length, 1);
  });
});

describe('Gemini generateContent', () => {
  const contents = (text) => [{ role: 'user', parts: [{ text }] }];

  test('non-stream reply with usageMetadata; MAX_TOKENS', async () => {
    let r = await gem('gemini-2.0-flash', { contents: contents('hi'), systemInstruction: { parts: [{ text: 'sys' }] },
      generationConfig: { temperature: 0.3 } });
    assert.equal(r.status, 200, r.text);
    const c = r.json.candidates[0];
    assert.deepEqual(c.content, { parts: [{ text: mockWords(8) }], role: 'model' });
    assert.equal(c.finishReason, 'STOP');
    assert.equal(c.index, 0);
    const u = r.json.usageMetadata;
    assert.equal(u.candidatesTokenCount, 8);
    assert.equal(u.totalTokenCount, u.promptTokenCount + 8);
    assert.equal(r.json.modelVersion, 'gemini-2.0-flash');
    r = await gem('g', { contents: contents('hi'), generationConfig: { maxOutputTokens: 2, stopSequences: ['w5'] } });
    assert.equal(r.json.candidates[0].finishReason, 'MAX_TOKENS');
    assert.equal(r.json.candidates[0].content.parts[0].text, 'w0 w1 ');
  });

  test('stream (alt=sse): one fragment per event, usage on each, totals last', async () => {
    const r = await gem('g', { contents: contents('hi [[mock chunks=3]]') }, {}, true);
    assert.match(r.text, /\r\n\r\n$/);
    const ev = sse(r);
    assert.equal(ev.length, 3);
    assert.equal(ev.map((e) => e.json.candidates[0].content.parts[0].text).join(''), mockWords(3));
    ev.forEach((e, i) => {
      assert.equal(e.json.usageMetadata.candidatesTokenCount, i + 1);
      assert.equal(e.json.candidates[0].finishReason, i === 2 ? 'STOP' : undefined);
    });
  });

  test('functionCall part, stream and not; key in ?key=', async () => {
    const body = { contents: contents('[[mock tool=get_weather]]'), tools: TOOLS_GEM };
    let r = await post('/v1beta/models/g:generateContent?key=' + KEY, body);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.candidates[0].content.parts, [{ functionCall: { name: 'get_weather', args: TOOL_ARGS } }]);
    assert.equal(r.json.candidates[0].finishReason, 'STOP');
    const ev = sse(await gem('g', body, {}, true));
    assert.deepEqual(ev.at(-1).json.candidates[0].content.parts[0].functionCall, { name: 'get_weather', args: TOOL_ARGS });
  });

  test('function turns are accepted and end the tool loop', async () => {
    const body = { tools: TOOLS_GEM, contents: [
      { role: 'user', parts: [{ text: '[[mock tool=get_weather]]' }] },
      { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'Paris' } } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { sky: 'sunny' } } }] },
    ] };
    const r = await gem('g', body);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.candidates[0].content.parts[0].text, mockWords(8));
  });

  test('errors: auth, injected status, context, missing alt=sse', async () => {
    const body = { contents: contents('hi') };
    gemError(await post('/v1beta/models/g:generateContent', body), 403, 'PERMISSION_DENIED');
    gemError(await gem('g', body, { 'x-goog-api-key': 'wrong' }), 400, 'INVALID_ARGUMENT');
    gemError(await gem('g', body, { 'x-mock-control': 'status=429' }), 429, 'RESOURCE_EXHAUSTED');
    gemError(await gem('g', body, { 'x-mock-control': 'status=503' }), 503, 'UNAVAILABLE');
    gemError(await gem('g', body, { 'x-mock-control': 'status=500' }), 500, 'INTERNAL');
    const e = gemError(await gem('g', { contents: contents('hello there [[mock context=3]]') }), 400, 'INVALID_ARGUMENT');
    assert.match(e.message, /input token count \(\d+\) exceeds the maximum number of tokens allowed \(3\)/);
    gemError(await post('/v1beta/models/g:streamGenerateContent', body, { 'x-goog-api-key': KEY }), 400, 'INVALID_ARGUMENT');
    gemError(await gem('g', { contents: [] }), 400, 'INVALID_ARGUMENT');
  });

  test('content_filter blocks the prompt (promptFeedback), stream and not', async () => {
    const body = { contents: contents('hi [[mock content_filter=1]]') };
    const r = await gem('g', body);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.promptFeedback.blockReason, 'SAFETY');
    assert.equal(r.json.candidates, undefined);
    const ev = sse(await gem('g', body, {}, true));
    assert.equal(ev.length, 1);
    assert.equal(ev[0].json.promptFeedback.blockReason, 'SAFETY');
  });
});

describe('Gemini batchEmbedContents', () => {
  const embedReq = (model, text, extra = {}) => ({ model, content: { parts: [{ text }] }, ...extra });
  const embed = (model, body, headers = {}) =>
    post(`/v1beta/models/${model}:batchEmbedContents`, body, { 'x-goog-api-key': KEY, ...headers });

  test('one embedding per request, in order, outputDimensionality, no token counts', async () => {
    let r = await embed('gemini-embedding-001', { requests: [
      embedReq('models/gemini-embedding-001', 'one'), embedReq('models/gemini-embedding-001', 'two')] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json), ['embeddings']);
    assert.equal(r.json.embeddings.length, 2);
    assert.equal(r.json.embeddings[0].values.length, 8);
    assert.notDeepEqual(r.json.embeddings[0].values, r.json.embeddings[1].values);
    r = await embed('e', { requests: [embedReq('models/e', 'x', { outputDimensionality: 3 })] });
    assert.equal(r.json.embeddings[0].values.length, 3);
  });

  test('errors: the model must match the URL, auth, injected status', async () => {
    gemError(await embed('e', { requests: [embedReq('models/other', 'x')] }), 400, 'INVALID_ARGUMENT');
    gemError(await embed('e', { requests: [] }), 400, 'INVALID_ARGUMENT');
    gemError(await embed('e', { requests: [embedReq('models/e', 'x')] }, { 'x-goog-api-key': 'wrong' }), 400, 'INVALID_ARGUMENT');
    gemError(await embed('e', { requests: [embedReq('models/e', '[[mock status=429]] x')] }), 429, 'RESOURCE_EXHAUSTED');
  });
});

describe('Azure OpenAI', () => {
  const path = '/openai/deployments/my-gpt4o/chat/completions';

  test('the deployment is the model; api-key auth; stream works', async () => {
    let r = await post(`${path}?api-version=2024-10-21`, { messages: user('hi') }, { 'api-key': KEY });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'my-gpt4o');
    assert.equal(r.json.choices[0].message.content, mockWords(8));
    r = await post(`${path}?api-version=2024-10-21`, { model: 'ignored', stream: true, messages: user('[[mock chunks=2]]') }, { 'api-key': KEY });
    const ev = sse(r);
    assert.equal(ev[0].json.model, 'my-gpt4o');
    assert.equal(ev.at(-1).data, '[DONE]');
  });

  test('missing api-version is 404, a bad key 401, in Azure shape', async () => {
    let r = await post(path, { messages: user('hi') }, { 'api-key': KEY });
    assert.equal(r.status, 404, r.text);
    assert.equal(r.json.error.code, '404');
    r = await post(`${path}?api-version=2024-10-21`, { messages: user('hi') }, { 'api-key': 'nope' });
    assert.equal(r.status, 401, r.text);
    assert.equal(r.json.error.code, '401');
    r = await post(`${path}?api-version=2024-10-21`, { messages: user('hi') }, { authorization: `Bearer ${KEY}` });
    assert.equal(r.status, 401, r.text);
  });
});

describe('embeddings and legacy completions', () => {
  const auth = { authorization: `Bearer ${KEY}` };

  test('embeddings: string, list, token arrays, dimensions', async () => {
    let r = await post('/v1/embeddings', { model: 'text-embedding-3-small', input: 'hello world' }, auth);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'list');
    assert.equal(r.json.model, 'text-embedding-3-small');
    assert.equal(r.json.data.length, 1);
    assert.equal(r.json.data[0].object, 'embedding');
    assert.equal(r.json.data[0].index, 0);
    assert.equal(r.json.data[0].embedding.length, 8);
    assert.ok(r.json.data[0].embedding.every((v) => typeof v === 'number' && v >= -1 && v <= 1));
    assert.equal(r.json.usage.prompt_tokens, 3);
    assert.equal(r.json.usage.total_tokens, 3);
    const again = await post('/v1/embeddings', { model: 'e', input: 'other text' }, auth);
    assert.deepEqual(again.json.data[0].embedding, r.json.data[0].embedding, 'not deterministic');

    r = await post('/v1/embeddings', { model: 'e', input: ['a', 'b', 'c'], dimensions: 4 }, auth);
    assert.deepEqual(r.json.data.map((d) => [d.index, d.embedding.length]), [[0, 4], [1, 4], [2, 4]]);
    r = await post('/v1/embeddings', { model: 'e', input: [[1, 2, 3], [4, 5]] }, auth);
    assert.equal(r.json.data.length, 2);
    assert.equal(r.json.usage.prompt_tokens, 5);
    r = await post('/v1/embeddings', { model: 'e', input: [1, 2, 3] }, auth);
    assert.equal(r.json.data.length, 1);
    r = await post('/v1/embeddings', { model: 'e', input: ['a'], dimensions: 3, encoding_format: 'base64' }, auth);
    const b = Buffer.from(r.json.data[0].embedding, 'base64');
    assert.equal(b.length, 12, 'three little-endian float32s');
    const floats = (await post('/v1/embeddings', { model: 'e', input: ['a'], dimensions: 3 }, auth)).json.data[0].embedding;
    assert.deepEqual([0, 1, 2].map((j) => b.readFloatLE(j * 4)), floats.map(Math.fround));
    r = await post('/v1/embeddings', { model: 'e', input: 'x', encoding_format: 'int8' }, auth);
    assert.equal(r.status, 400, r.text);
    r = await post('/openai/deployments/my-embedder/embeddings?api-version=2024-10-21', { input: ['a', 'b'] }, { 'api-key': KEY });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.model, 'my-embedder');
    assert.equal(r.json.data.length, 2);
    r = await post('/v1/embeddings', { model: 'e' }, auth);
    assert.equal(r.status, 400, r.text);
    r = await post('/v1/embeddings', { model: 'e', input: 'x' });
    assert.equal(r.status, 401, r.text);
  });

  test('completions: text_completion, stream and not', async () => {
    let r = await post('/v1/completions', { model: 'gpt-3.5-turbo-instruct', prompt: 'hello', max_tokens: 3 }, auth);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.object, 'text_completion');
    assert.equal(r.json.choices[0].text, 'w0 w1 w2 ');
    assert.equal(r.json.choices[0].finish_reason, 'length');
    assert.equal(r.json.usage.completion_tokens, 3);
    r = await post('/v1/completions', { model: 'i', prompt: 'hi [[mock chunks=2]]', stream: true, stream_options: { include_usage: true } }, auth);
    const ev = sse(r);
    assert.equal(ev.at(-1).data, '[DONE]');
    assert.ok(ev.slice(0, -1).every((e) => e.json.object === 'text_completion'));
    assert.equal(ev.slice(0, 2).map((e) => e.json.choices[0].text).join(''), mockWords(2));
    assert.equal(ev[2].json.choices[0].finish_reason, 'stop');
    assert.equal(ev[3].json.usage.completion_tokens, 2);
    r = await post('/v1/completions', { model: 'i' }, auth);
    assert.equal(r.status, 400, r.text);
  });
});

describe('echo control', () => {
  // a quote, a backslash, a newline, a tab, a control character and a
  // two-byte UTF-8 character: each must survive JSON escaping
  const TEXT = 'say "hi" \\ back\nslash\t\u0001 caf\u00e9';
  const CARD = '4111 1111 1111 1111';
  const turns = (last) => [
    { role: 'user', content: 'an earlier question' },
    { role: 'assistant', content: 'an answer' },
    { role: 'user', content: last },
  ];
  const contents = (text) => [{ role: 'user', parts: [{ text }] }];

  /** pieces checks each streamed piece is non-empty, whole UTF-8 and
   * shorter than the text, and returns them. */
  function pieces(list, text) {
    for (const p of list) {
      assert.equal(typeof p, 'string');
      assert.ok(p.length > 0, `an empty piece in ${JSON.stringify(list)}`);
      assert.ok(!p.includes('\uFFFD'), `a split UTF-8 character in ${JSON.stringify(list)}`);
    }
    assert.equal(list.join(''), text);
    return list;
  }

  /** OpenAI chat stream: the content deltas between the role event and
   * the finish event. */
  function oaPieces(ev) {
    assert.equal(ev.at(-1).data, '[DONE]');
    assert.equal(ev[0].json.choices[0].delta.role, 'assistant');
    assert.equal(ev.at(-2).json.choices[0].finish_reason, 'stop');
    return ev.slice(1, -2).map((e) => e.json.choices[0].delta.content);
  }

  test('OpenAI non-stream: the last user message, directive removed, escaped', async () => {
    const r = await oa({ model: 'm', messages: turns(`  ${TEXT} [[mock echo=1]]\n`) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, TEXT);
    assert.equal(r.json.choices[0].finish_reason, 'stop');
    assert.equal(r.json.usage.completion_tokens, 3); // three pieces by default
    assert.equal(r.json.usage.total_tokens, r.json.usage.prompt_tokens + 3);
  });

  test('OpenAI stream: chunks=3 gives exactly three content events', async () => {
    const ev = sse(await oa({ model: 'm', stream: true, stream_options: { include_usage: true },
      messages: turns(`${TEXT} [[mock echo=1 chunks=3]]`) }));
    assert.equal(pieces(oaPieces(ev.filter((e) => e.json?.choices?.length !== 0)), TEXT).length, 3);
    assert.equal(ev.at(-2).json.usage.completion_tokens, 3);
  });

  test('OpenAI stream: a card number split across three events (header control)', async () => {
    const ev = sse(await oa({ model: 'm', stream: true, messages: user(CARD) },
      { 'x-mock-control': 'echo=1,chunks=3' }));
    assert.deepEqual(pieces(oaPieces(ev), CARD), ['4111 1', '111 11', '11 1111']);
  });

  test('OpenAI: text parts are joined, other parts skipped; a directive in any part goes', async () => {
    const r = await oa({ model: 'm', messages: user([
      { type: 'text', text: 'part one ' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,AA==' } },
      { type: 'text', text: '[[mock echo=1]]part two' },
    ]) });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, 'part one part two');
  });

  test('pieces never split a UTF-8 character; more chunks than characters: one each', async () => {
    let ev = sse(await oa({ model: 'm', stream: true, messages: user('\u00e9\u00e9\u00e9\u00e9 [[mock echo=1 chunks=3]]') }));
    assert.equal(pieces(oaPieces(ev), '\u00e9\u00e9\u00e9\u00e9').length, 3);
    ev = sse(await oa({ model: 'm', stream: true, messages: user('ab\u00e9 [[mock echo=1 chunks=50]]') }));
    assert.deepEqual(oaPieces(ev), ['a', 'b', '\u00e9']);
  });

  test('a tool call is unaffected by echo', async () => {
    const r = await oa({ model: 'm', tools: TOOLS_OPENAI, messages: user('hi [[mock echo=1 tool=get_weather]]') });
    assert.equal(r.json.choices[0].finish_reason, 'tool_calls');
    assert.deepEqual(JSON.parse(r.json.choices[0].message.tool_calls[0].function.arguments), TOOL_ARGS);
  });

  test('Anthropic: stream chunks=3 and non-stream echo the last user text blocks', async () => {
    const last = [{ type: 'text', text: `${TEXT} [[mock echo=1 chunks=3]]` },
      { type: 'tool_result', tool_use_id: 'toolu_1', content: 'not echoed' }];
    const ev = sse(await ant({ model: 'c', max_tokens: 100, stream: true, messages: turns(last) }));
    const deltas = ev.filter((e) => e.event === 'content_block_delta').map((e) => {
      assert.equal(e.json.delta.type, 'text_delta');
      return e.json.delta.text;
    });
    assert.equal(pieces(deltas, TEXT).length, 3);
    const md = ev.find((e) => e.event === 'message_delta').json;
    assert.equal(md.delta.stop_reason, 'end_turn');
    assert.equal(md.usage.output_tokens, 3);
    const r = await ant({ model: 'c', max_tokens: 100, messages: turns(`${TEXT}\n[[mock echo=1]]`) });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.content, [{ type: 'text', text: TEXT }]);
  });

  test('Gemini: streamGenerateContent chunks=3 and generateContent', async () => {
    const body = { contents: [...contents('an earlier question'), { role: 'model', parts: [{ text: 'an answer' }] },
      ...contents(`[[mock echo=1 chunks=3]] ${TEXT}`)] };
    const ev = sse(await gem('g', body, {}, true));
    assert.equal(pieces(ev.map((e) => e.json.candidates[0].content.parts[0].text), TEXT).length, 3);
    assert.equal(ev.at(-1).json.candidates[0].finishReason, 'STOP');
    assert.equal(ev.at(-1).json.usageMetadata.candidatesTokenCount, 3);
    const r = await gem('g', { contents: contents(`${TEXT} [[mock echo=1]]`) });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.candidates[0].content.parts, [{ text: TEXT }]);
  });
});

describe('stats', () => {
  test('counted in total and per API', async () => {
    await post('/_mock/reset', '');
    await ant({ model: 'c', max_tokens: 10, messages: user('hi [[mock chunks=2]]') });
    await gem('g', { contents: [{ parts: [{ text: 'hi' }] }] }, { 'x-mock-control': 'status=500' });
    await oa({ model: 'm', messages: user('hi [[mock chunks=3]]') });
    const s = (await httpRequest(port, { path: '/_mock/stats' })).json;
    assert.equal(s.requests, 3);
    assert.equal(s.completed, 2);
    assert.equal(s.errors, 1);
    assert.equal(s.completion_tokens, 5);
    assert.deepEqual(Object.keys(s.by_api).sort(), ['anthropic', 'azure', 'bedrock', 'completions', 'embeddings', 'gemini', 'openai']);
    assert.equal(s.by_api.anthropic.completed, 1);
    assert.equal(s.by_api.anthropic.completion_tokens, 2);
    assert.equal(s.by_api.gemini.errors, 1);
    assert.equal(s.by_api.openai.completion_tokens, 3);
    assert.equal(s.by_api.azure.requests, 0);
  });
});
