// openai_sdk.test.mjs - the official `openai` npm package, unmodified,
// against a running Tollgate: a client only changes its base URL and key.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI from 'openai';

import { mockWords, promptTokens, startGateway, userMsg } from '../integration/harness.mjs';

describe('openai SDK', () => {
  let gw;
  let client;
  let restricted;

  before(async () => {
    gw = await startGateway();
    const k = await gw.createKey({ tenant: 'sdk' });
    const r = await gw.createKey({ tenant: 'sdk-restricted', models: ['mock-small'] });
    const opts = { baseURL: `${gw.baseUrl}/v1`, maxRetries: 0, timeout: 30_000 };
    client = new OpenAI({ ...opts, apiKey: k.key });
    restricted = new OpenAI({ ...opts, apiKey: r.key });
  });

  after(async () => {
    await gw?.stop();
  });

  test('chat.completions.create, non-stream: content and usage', async () => {
    const messages = userMsg('Say hello through the gateway');
    const c = await client.chat.completions.create({ model: 'gpt-4o-mini', messages });
    assert.equal(c.object, 'chat.completion');
    assert.equal(c.choices[0].message.role, 'assistant');
    assert.equal(c.choices[0].message.content, mockWords(8));
    assert.equal(c.choices[0].finish_reason, 'stop');
    const p = promptTokens(messages);
    assert.deepEqual(c.usage, { prompt_tokens: p, completion_tokens: 8, total_tokens: p + 8 });
  });

  test('withResponse exposes the gateway headers', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'mock-small', messages: userMsg('[[mock chunks=2]]') })
      .withResponse();
    assert.equal(data.choices[0].message.content, mockWords(2));
    assert.match(response.headers.get('x-request-id') ?? '', /\S/);
    assert.match(response.headers.get('x-tollgate-policy-revision') ?? '', /^\d+(; hash=[0-9a-f]{8})?$/);
  });

  test('stream: true, iterated with for await', async () => {
    const stream = await client.chat.completions.create({
      model: 'mock-small', messages: userMsg('[[mock chunks=6]] stream it'), stream: true,
    });
    let text = '';
    let chunks = 0;
    let finish = null;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.ok(chunk.usage == null, `usage without include_usage: ${JSON.stringify(chunk)}`);
      const choice = chunk.choices[0];
      assert.ok(choice, `a chunk without choices: ${JSON.stringify(chunk)}`);
      text += choice.delta?.content ?? '';
      finish = choice.finish_reason ?? finish;
    }
    assert.equal(text, mockWords(6));
    assert.equal(finish, 'stop');
    assert.equal(chunks, 1 + 6 + 1);
  });

  test('stream with stream_options.include_usage: the final chunk has usage', async () => {
    const messages = userMsg('[[mock chunks=4]] and count it');
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini', messages, stream: true, stream_options: { include_usage: true },
    });
    const all = [];
    for await (const chunk of stream) all.push(chunk);
    const text = all.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    assert.equal(text, mockWords(4));
    const last = all.at(-1);
    assert.deepEqual(last.choices, []);
    const p = promptTokens(messages);
    assert.deepEqual(last.usage, { prompt_tokens: p, completion_tokens: 4, total_tokens: p + 4 });
    assert.equal(all.filter((c) => c.usage != null).length, 1);
  });

  test('breaking out of a stream early does not upset the gateway', async () => {
    const stream = await client.chat.completions.create({
      model: 'mock-small', messages: userMsg('[[mock chunks=100 chunk_delay_ms=10]]'), stream: true,
    });
    let n = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content && ++n === 3) break;
    }
    assert.equal(n, 3);
    const c = await client.chat.completions.create({ model: 'mock-small', messages: userMsg('[[mock chunks=1]]') });
    assert.equal(c.choices[0].message.content, mockWords(1));
  });

  test('models.list', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ['gpt-4o-mini', 'mock-small']);
    const only = [];
    for await (const m of restricted.models.list()) only.push(m.id);
    assert.deepEqual(only, ['mock-small']);
  });

  test('a bad key throws AuthenticationError (401)', async () => {
    const bad = new OpenAI({ baseURL: `${gw.baseUrl}/v1`, apiKey: `sk-tg-${'f'.repeat(48)}`, maxRetries: 0 });
    await assert.rejects(
      bad.chat.completions.create({ model: 'gpt-4o-mini', messages: userMsg('hi') }),
      (err) => {
        assert.ok(err instanceof OpenAI.AuthenticationError, `got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.status, 401);
        assert.equal(err.code, 'invalid_api_key');
        assert.equal(err.type, 'invalid_request_error');
        return true;
      },
    );
  });

  test('other errors map to the SDK\'s types', async () => {
    await assert.rejects(
      restricted.chat.completions.create({ model: 'gpt-4o-mini', messages: userMsg('hi') }),
      (err) => err instanceof OpenAI.PermissionDeniedError && err.status === 403,
    );
    await assert.rejects(
      client.chat.completions.create({ model: 'no-such-model', messages: userMsg('hi') }),
      (err) => err instanceof OpenAI.NotFoundError && err.status === 404,
    );
    await assert.rejects(
      client.chat.completions.create({ model: 'mock-small', messages: userMsg('[[mock status=429]]') }),
      (err) => err instanceof OpenAI.RateLimitError && err.status === 429,
    );
    await assert.rejects(
      client.chat.completions.create({ model: 'mock-small', messages: [] }),
      (err) => err instanceof OpenAI.BadRequestError && err.status === 400 && err.param === 'messages',
    );
  });
});
