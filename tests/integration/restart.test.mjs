// restart.test.mjs - start, serve, stop, many times: every stop is clean
// (exit 0 under ASan/LSan, checked by gw.stop()) even with requests in
// flight, and no usage is lost across the restarts.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { pollUntil, sleep, startGateway, userMsg } from './harness.mjs';

test('stop with requests in flight, eight times over: clean exits, usage kept', async () => {
  let sent = 0;
  let ok = 0;
  let gw = await startGateway();
  const { key } = await gw.createKey({ tenant: 'cycles' });
  const stateDir = gw.dir;
  for (let i = 0; i < 8; i++) {
    if (i > 0) gw = await startGateway({ dir: stateDir });
    const inflight = [];
    for (let k = 0; k < 4; k++) {
      sent++;
      inflight.push(gw.chat({ model: 'gpt-4o-mini', messages: userMsg(`[[mock ttft_ms=${k * 40}]] n${i}`) }, { key })
        .then((r) => { if (r.status === 200) ok++; return r; }, () => null));
    }
    await sleep(20 + (i % 3) * 40);
    await gw.stop({ keepDir: true }); // asserts exit code 0 for all three
    const answers = await Promise.all(inflight);
    for (const r of answers) {
      // Answered, or told to retry; never a hang or a broken body.
      if (r) assert.ok([200, 503].includes(r.status), `status ${r.status}: ${r.text}`);
    }
  }
  // One more start: the spool replays whatever was not acknowledged.
  gw = await startGateway({ dir: stateDir });
  try {
    const t = await pollUntil(async () => {
      const x = await gw.spendTenant('cycles');
      return x && x.requests >= ok ? x : null;
    }, { timeoutMs: 15_000, intervalMs: 200, what: `all ${ok} answered requests to be counted` });
    assert.ok(t.requests >= ok && t.requests <= sent, `counted ${t.requests}, answered ${ok}, sent ${sent}`);
  } finally {
    await gw.stop();
  }
});
