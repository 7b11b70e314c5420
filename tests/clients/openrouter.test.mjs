// openrouter.test.mjs - the official `openai` npm package (v4), unmodified,
// sending OpenRouter's `models` and `provider` through Tollgate the way
// code written for OpenRouter does: as extra fields in the create() params
// (openai-node sends unknown params in the body as they are; Python's
// extra_body does the same). Streaming and not; a model the key may not
// use is skipped; a bad preference is the SDK's BadRequestError naming the
// field.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI from 'openai';

import { mockWords, startGateway, userMsg } from '../integration/harness.mjs';

describe('openai SDK with OpenRouter fields', () => {
  let gw;
  let client;

  before(async () => {
    gw = await startGateway({
      deployments: (port) => [{
        id: 'small-2', model: 'mock-small', provider: 'openai_compatible', api_base: `http://127.0.0.1:${port}/v1`,
        api_key: '${TG_TEST_PROVIDER_KEY}', labels: { provider: 'together', zdr: 'true' },
      }],
    });
    // This key may not use gpt-4o-mini: "models" must skip it.
    const k = await gw.createKey({ tenant: 'sdk-or', models: ['mock-small'] });
    client = new OpenAI({ baseURL: `${gw.baseUrl}/v1`, apiKey: k.key, maxRetries: 0, timeout: 30_000 });
  });

  after(async () => {
    await gw?.stop();
  });

  test('non-stream: models skips what the key may not use; provider narrows', async () => {
    const { data, response } = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      models: ['gpt-4o-mini', 'mock-small'],
      provider: { only: ['together'], allow_fallbacks: false },
      messages: userMsg('[[mock chunks=3]] hello'),
    }).withResponse();
    assert.equal(data.choices[0].message.content, mockWords(3));
    assert.equal(response.headers.get('x-tollgate-deployment'), 'small-2');
  });

  test('stream: models without model, provider.order', async () => {
    const { data: stream, response } = await client.chat.completions.create({
      models: ['no-such-model', 'mock-small'],
      provider: { order: ['mock-small'] },
      messages: userMsg('[[mock chunks=4]] stream it'),
      stream: true,
    }).withResponse();
    assert.equal(response.headers.get('x-tollgate-deployment'), 'mock-small');
    let text = '';
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, mockWords(4));
  });

  test('a preference nothing meets, or one not supported, is a BadRequestError naming it', async () => {
    await assert.rejects(
      client.chat.completions.create({
        model: 'mock-small', provider: { only: ['azure'] }, messages: userMsg('hi'),
      }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'provider.only' &&
        e.code === 'no_matching_deployment',
    );
    await assert.rejects(
      client.chat.completions.create({
        model: 'mock-small', provider: { preferred_max_latency: 1 }, messages: userMsg('hi'), stream: true,
      }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'provider.preferred_max_latency',
    );
    await assert.rejects(
      client.chat.completions.create({ models: ['gpt-4o-mini'], messages: userMsg('hi') }),
      (e) => e instanceof OpenAI.PermissionDeniedError && e.code === 'model_not_allowed',
    );
  });
});
