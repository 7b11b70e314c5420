// responses_sdk.test.mjs - the real SDKs on the Responses API through
// Tollgate: the `openai` package's responses.create (whole and streamed,
// with a function tool) and the Vercel AI SDK's default OpenAI provider
// (ai 6 / @ai-sdk/openai 3: generateText, streamText, a tool), each against
// an OpenAI deployment (the request goes natively to the mock's
// /v1/responses) and an Anthropic one (translated through the chat form);
// and what this stateless gateway answers to previous_response_id and
// to retrieving a stored response.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createOpenAI } from '@ai-sdk/openai';
import { generateText, jsonSchema, streamText, tool } from 'ai';
import OpenAI from 'openai';

import { mockWords, providerDeployments, startGateway } from '../integration/harness.mjs';

const BACKENDS = [
  { model: 'm-openai', dep: 'oai', api: 'openai' },
  { model: 'm-anthropic', dep: 'ant', api: 'anthropic' },
];

const WEATHER = {
  type: 'function',
  name: 'get_weather',
  description: 'Weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

describe('Responses API clients', () => {
  let gw;
  let openai;
  let provider;

  before(async () => {
    gw = await startGateway({ deployments: (p) => providerDeployments(p) });
    const k = await gw.createKey({ tenant: 'responses-sdk' });
    openai = new OpenAI({ baseURL: `${gw.baseUrl}/v1`, apiKey: k.key, maxRetries: 0, timeout: 30_000 });
    provider = createOpenAI({ baseURL: `${gw.baseUrl}/v1`, apiKey: k.key });
  });

  after(async () => {
    await gw?.stop();
  });

  for (const b of BACKENDS) {
    test(`openai SDK responses.create -> ${b.model}: whole, streamed, a tool`, async () => {
      const before = (await gw.mockStats()).by_api[b.api].requests;
      const { data: r, response } = await openai.responses.create({
        model: b.model, instructions: 'Answer briefly.', input: '[[mock chunks=3]] hi', max_output_tokens: 64,
      }).withResponse();
      assert.equal(response.headers.get('x-tollgate-deployment'), b.dep);
      assert.equal(r.object, 'response');
      assert.match(r.id, /^resp_/);
      assert.equal(r.status, 'completed');
      assert.equal(r.output_text, mockWords(3));
      assert.equal(r.usage.output_tokens, 3);
      assert.equal(r.usage.total_tokens, r.usage.input_tokens + 3);

      const stream = await openai.responses.create({ model: b.model, input: '[[mock chunks=4]] hi', stream: true });
      const types = [];
      let text = '';
      let done;
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'response.output_text.delta') text += ev.delta;
        if (ev.type === 'response.completed') done = ev.response;
      }
      assert.equal(text, mockWords(4));
      assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress',
        'response.output_item.added', 'response.content_part.added']);
      assert.equal(types.at(-1), 'response.completed');
      assert.equal(done.usage.output_tokens, 4);
      assert.equal(done.output[0].content[0].text, mockWords(4));

      const t = await openai.responses.create({
        model: b.model, tools: [WEATHER],
        input: [{ role: 'user', content: [{ type: 'input_text', text: '[[mock tool=get_weather]] weather in Paris?' }] }],
      });
      const call = t.output.find((o) => o.type === 'function_call');
      assert.equal(call.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris', n: 1 });
      // The tool's result sent back: the conversation goes on.
      const t2 = await openai.responses.create({
        model: b.model, tools: [WEATHER],
        input: [
          { role: 'user', content: '[[mock tool=get_weather]] weather in Paris?' },
          { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
          { type: 'function_call_output', call_id: call.call_id, output: 'sunny' },
        ],
      });
      assert.equal(t2.output_text, mockWords(8));
      assert.equal((await gw.mockStats()).by_api[b.api].requests, before + 4);
    });

    test(`Vercel AI SDK default OpenAI provider -> ${b.model}: generateText, streamText, a tool`, async () => {
      const g = await generateText({ model: provider(b.model), prompt: '[[mock chunks=5]] hi', maxOutputTokens: 64 });
      assert.equal(g.text, mockWords(5));
      assert.equal(g.usage.outputTokens, 5);
      assert.ok(g.usage.inputTokens > 0);
      assert.match(g.response.id, /^resp_/);

      const s = streamText({ model: provider(b.model), prompt: '[[mock chunks=6]] hi' });
      let text = '';
      for await (const d of s.textStream) text += d;
      assert.equal(text, mockWords(6));
      assert.equal((await s.usage).outputTokens, 6);
      assert.equal(await s.finishReason, 'stop');

      const withTool = await generateText({
        model: provider(b.model),
        prompt: '[[mock tool=get_weather]] weather in Paris?',
        tools: {
          get_weather: tool({
            description: 'Weather in a city',
            inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
          }),
        },
      });
      assert.equal(withTool.toolCalls.length, 1);
      assert.equal(withTool.toolCalls[0].toolName, 'get_weather');
      assert.deepEqual(withTool.toolCalls[0].input, { city: 'Paris', n: 1 });
      assert.equal(withTool.finishReason, 'tool-calls');

      const st = streamText({
        model: provider(b.model),
        prompt: '[[mock tool=get_weather]] weather in Paris?',
        tools: {
          get_weather: tool({
            description: 'Weather in a city',
            inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } } }),
          }),
        },
      });
      const calls = await st.toolCalls;
      assert.equal(calls[0].toolName, 'get_weather');
      assert.deepEqual(calls[0].input, { city: 'Paris', n: 1 });
    });
  }

  // Earlier answers sent back as conversation: the AI SDK refers to their
  // items by id while store is on (its default), which needs stored
  // responses; with store off it sends the items themselves.
  for (const b of BACKENDS) {
    test(`Vercel AI SDK multi-turn with store off -> ${b.model}: earlier answers sent back as items`, async () => {
      const opts = { openai: { store: false } };
      const first = [{ role: 'user', content: '[[mock chunks=2]] hi' }];
      const r1 = await generateText({ model: provider(b.model), messages: first, providerOptions: opts });
      assert.equal(r1.text, mockWords(2));
      const r2 = await generateText({
        model: provider(b.model), providerOptions: opts,
        messages: [...first, ...r1.response.messages, { role: 'user', content: '[[mock echo=1]] and more' }],
      });
      assert.equal(r2.text, 'and more');
      await assert.rejects(generateText({
        model: provider(b.model), maxRetries: 0,
        messages: [...first, ...r1.response.messages, { role: 'user', content: 'again' }],
      }), (e) => e.statusCode === 400 && /item_reference/.test(e.message) && /store = false/.test(e.message));
    });
  }

  test('openai SDK: previous_response_id is refused; retrieve, delete and inputItems.list of an unknown id are 404', async () => {
    await assert.rejects(
      openai.responses.create({ model: 'm-anthropic', input: 'hi', previous_response_id: 'resp_x' }),
      (e) => e.status === 400 && /previous_response_id/.test(e.message) && e.param === 'previous_response_id');
    const notFound = (e) => e.status === 404 && e.code === 'not_found' && /resp_x/.test(e.message);
    await assert.rejects(openai.responses.retrieve('resp_x'), notFound);
    await assert.rejects(openai.responses.del('resp_x'), notFound);
    await assert.rejects(openai.responses.inputItems.list('resp_x', { limit: 5, order: 'asc' }), notFound);
  });
});
