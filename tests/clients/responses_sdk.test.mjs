// responses_sdk.test.mjs - the real SDKs on the Responses API through
// Tollgate: the `openai` package's responses.create (whole and streamed,
// with a function tool) and the Vercel AI SDK's default OpenAI provider
// (ai 6 / @ai-sdk/openai 3: generateText, streamText, a tool), each against
// an OpenAI deployment (the request goes natively to the mock's
// /v1/responses) and Anthropic, Gemini and Bedrock ones (translated through
// the chat form);
// stored responses: previous_response_id (the model sees the history, also
// on another provider format), responses.retrieve, inputItems.list (the
// SDK pages with after/has_more), responses.del; the AI SDK's multi-turn
// with its default options (store on: earlier answers go back as
// item_reference), with a tool round trip, and with store off.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createOpenAI } from '@ai-sdk/openai';
import { generateText, jsonSchema, stepCountIs, streamText, tool } from 'ai';
import OpenAI from 'openai';

import { awsEnv, bedrockDeployments } from '../integration/bedrock.mjs';
import { mockWords, providerDeployments, startGateway } from '../integration/harness.mjs';

const BACKENDS = [
  { model: 'm-openai', dep: 'oai', api: 'openai' },
  { model: 'm-anthropic', dep: 'ant', api: 'anthropic' },
  { model: 'm-gemini', dep: 'gem', api: 'gemini' },
  { model: 'm-bedrock', dep: 'br', api: 'bedrock' },
];

const BUNDLE = {
  'bundle.json': { name: 'responses-sdk', revision: 1 },
  'access.policy.json': { rules: [
    { id: 'allow-all', kind: 'access', effect: 'allow' },
    { id: 'audit-meta', kind: 'audit', capture: 'metadata' },
  ] },
};

/** bodyOf is the request body an AI SDK result says it sent. */
const bodyOf = (req) => (typeof req.body === 'string' ? JSON.parse(req.body) : req.body);

/** textOf is what a Responses input item says. */
function textOf(it) {
  if (typeof it.content === 'string') return it.content;
  return (it.content ?? []).map((p) => p.text ?? '').join('');
}

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
    // An audit rule with capture metadata: responses are kept (capture
    // none, the default without one, keeps none).
    gw = await startGateway({
      deployments: (p) => [...providerDeployments(p), ...bedrockDeployments(p)],
      dataplaneEnv: awsEnv(),
      bundle: BUNDLE,
    });
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
      // With store on (the default), the AI SDK refers to the earlier
      // answer by its id: it was never kept, so the reference is unknown.
      await assert.rejects(generateText({
        model: provider(b.model), maxRetries: 0,
        messages: [...first, ...r1.response.messages, { role: 'user', content: 'again' }],
      }), (e) => {
        assert.equal(e.statusCode, 400, e.message);
        const err = JSON.parse(e.responseBody).error;
        assert.equal(err.code, 'item_not_found', e.responseBody);
        assert.equal(err.param, 'input');
        return true;
      });
    });
  }

  for (const b of BACKENDS) {
    test(`openai SDK stored responses -> ${b.model}: previous_response_id, retrieve, inputItems.list, del`, async () => {
      const other = BACKENDS.find((x) => x !== b);
      const r1 = await openai.responses.create({ model: b.model, input: '[[mock chunks=5]] first' });
      assert.equal(r1.store, true);
      assert.equal(r1.output_text, mockWords(5));

      // No directive in the new input: five words (not the mock's default
      // eight) only if the model was sent turn 1.
      const r2 = await openai.responses.create({ model: b.model, input: 'second', previous_response_id: r1.id });
      assert.equal(r2.output_text, mockWords(5), 'the model did not see turn 1');
      assert.equal(r2.store, true);
      const spelled = [{ role: 'user', content: '[[mock chunks=5]] first' }, { role: 'assistant', content: mockWords(5) },
        { role: 'user', content: 'second' }];
      const twin = await openai.responses.create({ model: b.model, store: false, input: spelled });
      assert.equal(r2.usage.input_tokens, twin.usage.input_tokens, 'the model was sent another history');

      // Continued on the other provider format, streamed.
      const third = ['third', 'and a bit', 'and the end'].map((t) => ({ role: 'user', content: t }));
      const stream = await openai.responses.create({ model: other.model, input: third, previous_response_id: r2.id,
        stream: true });
      let text = '';
      let done;
      for await (const ev of stream) {
        if (ev.type === 'response.output_text.delta') text += ev.delta;
        if (ev.type === 'response.completed') done = ev.response;
      }
      assert.equal(text, mockWords(5), `${other.model} did not see turns 1 and 2`);
      assert.equal(done.store, true);

      const got = await openai.responses.retrieve(r2.id);
      const { output_text: _, ...plain } = r2;
      assert.deepEqual(got, plain);
      assert.deepEqual(await openai.responses.retrieve(done.id), done);

      // Turn 3's input items: its own input, as OpenAI lists them (the
      // turns before it are read from the chain); the SDK pages through
      // them two at a time (after = the last id, until has_more is false).
      const page = await openai.responses.inputItems.list(done.id, { order: 'asc', limit: 2 });
      assert.equal(page.data.length, 2);
      assert.equal(page.has_more, true);
      const all = [];
      for await (const it of openai.responses.inputItems.list(done.id, { order: 'asc', limit: 2 })) all.push(it);
      assert.deepEqual(all.map(textOf), ['third', 'and a bit', 'and the end']);
      assert.deepEqual(all.map((i) => i.role), ['user', 'user', 'user']);
      const newest = await openai.responses.inputItems.list(done.id);
      assert.deepEqual(newest.data.map(textOf), all.map(textOf).reverse());
      assert.deepEqual((await openai.responses.inputItems.list(r2.id)).data.map(textOf), ['second']);

      assert.deepEqual(await openai.responses.del(r2.id), { id: r2.id, object: 'response', deleted: true });
      await assert.rejects(openai.responses.retrieve(r2.id),
        (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'not_found');
      await assert.rejects(openai.responses.inputItems.list(r2.id), (e) => e instanceof OpenAI.NotFoundError);
      await assert.rejects(openai.responses.create({ model: b.model, input: 'x', previous_response_id: r2.id }),
        (e) => e instanceof OpenAI.BadRequestError && e.code === 'previous_response_not_found' &&
          e.param === 'previous_response_id');
      // The others stay; the chain through the deleted turn is broken.
      assert.equal((await openai.responses.retrieve(r1.id)).id, r1.id);
      await assert.rejects(openai.responses.create({ model: b.model, input: 'x', previous_response_id: done.id }),
        (e) => e instanceof OpenAI.BadRequestError && e.code === 'previous_response_not_found' &&
          e.message.includes(r2.id) && e.message.includes(done.id));
      assert.equal(r2.previous_response_id, r1.id, 'previous_response_id is not echoed');
      assert.equal(done.previous_response_id, r2.id, 'previous_response_id is not echoed in the stream');
    });
  }

  test('openai SDK: retrieve, delete and inputItems.list of an unknown id are 404; previous_response_id 400', async () => {
    const notFound = (e) => e instanceof OpenAI.NotFoundError && e.code === 'not_found' && /resp_x/.test(e.message);
    await assert.rejects(openai.responses.retrieve('resp_x'), notFound);
    await assert.rejects(openai.responses.del('resp_x'), notFound);
    await assert.rejects(openai.responses.inputItems.list('resp_x', { limit: 5, order: 'asc' }), notFound);
    for (const b of BACKENDS) {
      await assert.rejects(openai.responses.create({ model: b.model, input: 'hi', previous_response_id: 'resp_x' }),
        (e) => e instanceof OpenAI.BadRequestError && e.code === 'previous_response_not_found' &&
          e.param === 'previous_response_id' && e.type === 'invalid_request_error');
    }
  });

  // The AI SDK's defaults keep store on: earlier assistant answers go back
  // as item_reference, which the gateway resolves from what it kept (for
  // the OpenAI deployment, OpenAI's own item ids of its native answers).
  for (const model of ['m-openai', 'm-anthropic', 'm-gemini', 'm-bedrock']) {
    test(`Vercel AI SDK multi-turn with default options -> ${model}: item_reference, generateText, streamText, a tool`, async () => {
      const first = [{ role: 'user', content: '[[mock chunks=5]] hi' }];
      const r1 = await generateText({ model: provider(model), messages: first });
      assert.equal(r1.text, mockWords(5));
      const id1 = r1.response.messages[0].content.find((p) => p.type === 'text').providerOptions.openai.itemId;
      assert.match(id1, model === 'm-openai' ? /^msg_mock_/ : /^msg_req_/);

      const m2 = [...first, ...r1.response.messages, { role: 'user', content: 'and more' }];
      const r2 = await generateText({ model: provider(model), messages: m2, maxRetries: 0 });
      assert.deepEqual(bodyOf(r2.request).input[1], { type: 'item_reference', id: id1 });
      assert.equal(r2.text, mockWords(5));
      // The provider was sent the referenced answer's text: the same
      // prompt as the conversation spelled out (store off).
      const w2 = await generateText({ model: provider(model), messages: m2, providerOptions: { openai: { store: false } } });
      assert.equal(bodyOf(w2.request).input[1].type ?? 'message', 'message');
      assert.equal(r2.usage.inputTokens, w2.usage.inputTokens);

      // streamText, the same way.
      const m3 = [...m2, ...r2.response.messages, { role: 'user', content: '[[mock chunks=3]] third turn' }];
      const s = streamText({ model: provider(model), messages: m3, maxRetries: 0 });
      let text = '';
      for await (const d of s.textStream) text += d;
      assert.equal(text, mockWords(3));
      const sent = bodyOf(await s.request).input;
      assert.deepEqual(sent.filter((i) => i.type === 'item_reference').map((i) => i.id),
        [id1, r2.response.messages[0].content.find((p) => p.type === 'text').providerOptions.openai.itemId]);
      const sw = streamText({ model: provider(model), messages: m3, providerOptions: { openai: { store: false } } });
      await sw.text;
      assert.equal((await s.usage).inputTokens, (await sw.usage).inputTokens);

      // A tool round trip on top, whole and streamed: the call and its
      // result go by value, the earlier answers by reference.
      const m4 = [...m3, ...(await s.response).messages, { role: 'user', content: '[[mock tool=get_weather]] weather in Paris?' }];
      const tools = {
        get_weather: tool({
          description: 'Weather in a city',
          inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
          execute: async ({ city }) => `sunny in ${city}`,
        }),
      };
      const g = await generateText({ model: provider(model), messages: m4, tools, stopWhen: stepCountIs(3), maxRetries: 0 });
      assert.equal(g.steps.length, 2);
      assert.equal(g.steps[0].toolCalls[0].toolName, 'get_weather');
      assert.equal(g.steps[0].toolResults[0].output, 'sunny in Paris');
      assert.equal(g.text, mockWords(3));
      const in2 = bodyOf(g.steps[1].request).input;
      assert.equal(in2.filter((i) => i.type === 'item_reference').length, 3);
      assert.equal(in2.at(-1).type, 'function_call_output');
      const st = streamText({ model: provider(model), messages: m4, tools, stopWhen: stepCountIs(3), maxRetries: 0 });
      assert.equal(await st.text, mockWords(3));
      assert.equal((await st.steps).length, 2);

      // And on after the tool round: its final answer referred to as well.
      const m5 = [...m4, ...g.response.messages, { role: 'user', content: '[[mock chunks=2]] thanks' }];
      const last = await generateText({ model: provider(model), messages: m5, maxRetries: 0 });
      assert.equal(last.text, mockWords(2));
      assert.equal(bodyOf(last.request).input.filter((i) => i.type === 'item_reference').length, 4);
    });
  }
});
