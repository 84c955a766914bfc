// Browser test of the demo web client (crates/chat-server/web/), run by tests/web/run.sh against
// a `message-service serve` on the embedded profile.
//
// Two users in two browser contexts (Alice on a desktop window, Bob on a phone-sized one) sign
// in, chat both ways (delivery, ack state, seen receipt, typing indicator), Bob reloads and pages
// the whole history with "Load more", then goes offline, misses messages, comes back and gets
// them through `sync`. Any console error, page error or failed HTTP request fails the test.
//
// Environment: WEB_TEST_URL (the service, required), WEB_TEST_ARTIFACTS (screenshots),
// WEB_TEST_CHROMIUM (default /usr/bin/chromium), WEB_TEST_HEADED=1 to watch it.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.WEB_TEST_URL;
const ARTIFACTS = process.env.WEB_TEST_ARTIFACTS ?? path.resolve('web-test-artifacts');
const CHROMIUM = process.env.WEB_TEST_CHROMIUM ?? '/usr/bin/chromium';
const PAGE_SIZE = 10;
const HISTORY_MESSAGES = 30;
const PATIENCE_MS = 15_000; // for any one expectation
const TOTAL_MS = 240_000; // for the whole test

if (!BASE) {
  console.error('WEB_TEST_URL is not set: run tests/web/run.sh, which starts the service.');
  process.exit(2);
}

const failTimer = setTimeout(() => {
  console.error(`FAIL: the test took longer than ${TOTAL_MS / 1000} s`);
  process.exit(1);
}, TOTAL_MS);

// ---- Helpers -----------------------------------------------------------------------------------

const short = (id) => id.slice(0, 8);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries `check` (which throws while not yet true) until it passes or PATIENCE_MS runs out. */
async function eventually(what, check, patience = PATIENCE_MS) {
  const deadline = Date.now() + patience;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) {
        error.message = `${what}: ${error.message}`;
        throw error;
      }
      await sleep(100);
    }
  }
}

let shot = 0;
async function screenshot(page, name) {
  shot += 1;
  const file = path.join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
}

/** Everything that must not happen on a page: console errors, page errors, failed requests. */
const problems = [];
function watch(page, who) {
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`${who}: console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`${who}: page error: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 400) {
      problems.push(`${who}: HTTP ${response.status()} for ${response.request().method()} ${response.url()}`);
    }
  });
  page.on('requestfailed', (request) => {
    problems.push(`${who}: request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`);
  });
}

/**
 * Records, per message item (by client_msg_id), every `data-state` it showed, so the test can
 * check "sending" came before "sent" even when the ack arrives within milliseconds.
 */
function recordStates() {
  window.__states = {};
  const note = (element) => {
    if (!(element instanceof HTMLElement) || !element.dataset.clientMsgId || !element.dataset.state) return;
    const seen = (window.__states[element.dataset.clientMsgId] ??= []);
    if (seen.at(-1) !== element.dataset.state) seen.push(element.dataset.state);
  };
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === 'attributes') note(record.target);
      for (const node of record.addedNodes ?? []) note(node);
    }
  }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-state'] });
}

/** The list item of the message whose text is `text`. */
const message = (page, text) =>
  page.locator('#messages li.message').filter({ has: page.locator('.content', { hasText: new RegExp(`^${text}$`) }) });

async function expectState(page, text, states) {
  await eventually(`"${text}" in state ${states}`, async () => {
    const state = await message(page, text).getAttribute('data-state', { timeout: 500 });
    assert.ok(states.includes(state), `state is ${state}`);
  });
}

async function statesOf(page, text) {
  const clientMsgId = await message(page, text).getAttribute('data-client-msg-id');
  return page.evaluate((id) => window.__states[id] ?? [], clientMsgId);
}

async function expectStatus(page, state) {
  await eventually(`connection status ${state}`, async () => {
    assert.equal(await page.locator('#connection').getAttribute('data-state'), state);
  });
}

async function messageTexts(page) {
  return page.locator('#messages li.message .content').allTextContents();
}

async function sendText(page, text) {
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill(text);
  await box.press('Enter');
}

async function signIn(page, userId) {
  await page.goto(`${BASE}/?page_size=${PAGE_SIZE}`);
  await page.getByLabel('User id', { exact: true }).fill(userId);
  await page.getByLabel('User id', { exact: true }).press('Enter'); // the keyboard submits the form
  await expectStatus(page, 'connected');
  assert.equal(await page.locator('#my-id').inputValue(), userId.toLowerCase());
}

// ---- The test ----------------------------------------------------------------------------------

const steps = [];
async function step(name, run) {
  const started = Date.now();
  process.stdout.write(`- ${name} … `);
  try {
    await run();
  } catch (error) {
    console.log('FAILED');
    steps.push({ name, ok: false });
    throw error;
  }
  console.log(`ok (${Date.now() - started} ms)`);
  steps.push({ name, ok: true });
}

await mkdir(ARTIFACTS, { recursive: true });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: process.env.WEB_TEST_HEADED !== '1',
});
const aliceContext = await browser.newContext({ viewport: { width: 1200, height: 800 } });
// A phone: one pane at a time, so the test also walks the responsive layout.
const bobContext = await browser.newContext({
  viewport: { width: 390, height: 844 },
  isMobile: true,
  hasTouch: true,
  deviceScaleFactor: 2,
});
await aliceContext.addInitScript(recordStates);
await bobContext.addInitScript(recordStates);
const alice = await aliceContext.newPage();
const bob = await bobContext.newPage();
watch(alice, 'alice');
watch(bob, 'bob');

// Bob's sockets and what went over them, to prove the offline gap is closed by `sync`.
const bobSockets = [];
bob.on('websocket', (socket) => {
  const record = { url: socket.url(), sent: [], received: [] };
  bobSockets.push(record);
  socket.on('framesent', (frame) => record.sent.push(JSON.parse(frame.payload)));
  socket.on('framereceived', (frame) => record.received.push(JSON.parse(frame.payload)));
});
// Bob's history requests, to prove "Load more" pages through the cursor.
const bobHistory = [];
bob.on('request', (request) => {
  if (/\/users\/chat\/[^/]+$/.test(new URL(request.url()).pathname)) bobHistory.push(new URL(request.url()));
});

const aliceId = randomUUID();
const bobId = randomUUID();
let failure = null;

try {
  await step('the page is served with its policy and loads without errors', async () => {
    const response = await alice.goto(`${BASE}/`);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-type'], /^text\/html/);
    assert.match(response.headers()['content-security-policy'], /default-src 'self'/);
    await alice.getByRole('heading', { name: 'Sign in' }).waitFor();
    await screenshot(alice, 'sign-in');
  });

  await step('both users sign in through the development token endpoint', async () => {
    // Alice lets the page make up an id; Bob types his (in capitals: the page normalises).
    await alice.goto(`${BASE}/?page_size=${PAGE_SIZE}`);
    await alice.getByRole('button', { name: 'Random id' }).click();
    const generated = await alice.getByLabel('User id', { exact: true }).inputValue();
    assert.match(generated, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await signIn(alice, aliceId);
    await signIn(bob, bobId.toUpperCase());
    await screenshot(bob, 'bob-signed-in-phone');
  });

  await step('Alice opens a chat with Bob by id and sends: sending → sent', async () => {
    await alice.getByLabel('Chat with user id').fill(bobId);
    await alice.getByLabel('Chat with user id').press('Enter');
    await alice.getByRole('heading', { name: `Chat with ${short(bobId)}` }).waitFor();
    // Opening a chat puts the keyboard in the message box.
    assert.equal(await alice.evaluate(() => document.activeElement?.id), 'composer-input');
    await sendText(alice, 'Hello Bob');
    await expectState(alice, 'Hello Bob', ['sent', 'seen']);
    const states = await statesOf(alice, 'Hello Bob');
    assert.deepEqual(states.slice(0, 2), ['sending', 'sent'], `states shown: ${states}`);
  });

  await step('Bob gets the new chat live (unread badge), opens it, and Alice sees "Seen"', async () => {
    const chat = bob.locator(`button.chat-item[data-peer-id="${aliceId}"]`);
    await chat.waitFor({ timeout: PATIENCE_MS });
    await eventually('unread badge', async () => assert.equal(await chat.locator('.badge').textContent(), '1'));
    await chat.click();
    await message(bob, 'Hello Bob').waitFor({ timeout: PATIENCE_MS });
    await expectState(alice, 'Hello Bob', ['seen']);
    assert.equal(await message(alice, 'Hello Bob').locator('.state').textContent(), 'Seen');
    await screenshot(alice, 'alice-seen');
  });

  await step('Bob types (Alice sees the indicator) and answers; Alice is told, and it is seen', async () => {
    const box = bob.getByRole('textbox', { name: 'Message' });
    await box.click();
    await box.pressSequentially('Hi Alice', { delay: 30 });
    await eventually('typing indicator', async () => {
      assert.equal(await alice.locator('#typing').textContent(), `${short(bobId)} is typing…`);
    });
    await screenshot(alice, 'alice-sees-typing');
    await box.press('Enter');
    await message(alice, 'Hi Alice').waitFor({ timeout: PATIENCE_MS });
    // New messages reach screen readers through a polite live region.
    assert.equal(await alice.locator('#announcer').getAttribute('aria-live'), 'polite');
    assert.equal(await alice.locator('#announcer').textContent(), `New message from ${short(bobId)}: Hi Alice`);
    // The message replaces the typing indicator.
    assert.equal(await alice.locator('#typing').textContent(), '');
    await expectState(bob, 'Hi Alice', ['seen']);
    const states = await statesOf(bob, 'Hi Alice');
    assert.deepEqual(states, ['sending', 'sent', 'seen'], `states shown: ${states}`);
    await screenshot(bob, 'bob-chat-phone');
  });

  await step(`Alice sends ${HISTORY_MESSAGES} more; all are acked and delivered live`, async () => {
    for (let i = 1; i <= HISTORY_MESSAGES; i += 1) await sendText(alice, `History ${String(i).padStart(2, '0')}`);
    await eventually('all acked', async () => {
      const pending = await alice.locator('#messages li.message[data-state="sending"]').count();
      assert.equal(pending, 0, `${pending} still sending`);
    });
    await eventually('all delivered', async () => {
      assert.equal((await messageTexts(bob)).length, HISTORY_MESSAGES + 2);
    });
    assert.deepEqual(await messageTexts(alice), await messageTexts(bob), 'both show one order');
    await screenshot(alice, 'alice-history-sent');
  });

  await step('Bob reloads and pages back to the oldest message with "Load more"', async () => {
    await bob.reload();
    await expectStatus(bob, 'connected');
    bobHistory.length = 0;
    await bob.locator(`button.chat-item[data-peer-id="${aliceId}"]`).click();
    const loadMore = bob.getByRole('button', { name: 'Load more' });
    await loadMore.waitFor();
    assert.equal((await messageTexts(bob)).length, PAGE_SIZE, 'the first page');
    let clicks = 0;
    while (await loadMore.isVisible()) {
      const before = (await messageTexts(bob)).length;
      await loadMore.click();
      clicks += 1;
      await eventually('a page more', async () => assert.ok((await messageTexts(bob)).length > before));
      await eventually('loaded', async () => assert.equal(await bob.locator('#load-more').textContent(), 'Load more'));
      assert.ok(clicks < 20, 'Load more never ends');
    }
    const texts = await messageTexts(bob);
    assert.equal(texts.length, HISTORY_MESSAGES + 2, 'every message exactly once');
    assert.equal(texts[0], 'Hello Bob', 'the oldest message is at the top');
    assert.equal(texts.at(-1), `History ${HISTORY_MESSAGES}`);
    assert.ok(clicks >= 2, `only ${clicks} Load more clicks`);
    assert.equal(await bob.locator('#history-note').textContent(), 'This is the start of the conversation.');
    // The first request has no cursor; each later one passes the previous page's next_cursor.
    assert.equal(bobHistory.length, clicks + 1);
    assert.equal(bobHistory[0].searchParams.get('cursor'), null);
    assert.equal(bobHistory[0].searchParams.get('limit'), String(PAGE_SIZE));
    for (const url of bobHistory.slice(1)) assert.match(url.searchParams.get('cursor') ?? '', /^[0-9a-f]{32}$/);
    await bob.locator('#scroller').evaluate((element) => { element.scrollTop = 0; });
    await screenshot(bob, 'bob-history-top');
  });

  await step('Bob goes offline, misses messages, comes back and catches up through sync', async () => {
    const newestBefore = await bob.locator('#messages li.message').last().getAttribute('data-message-id');
    const socketsBefore = bobSockets.length;
    await bobContext.setOffline(true);
    await expectStatus(bob, 'offline');
    await sendText(bob, 'Sent while offline');
    await expectState(bob, 'Sent while offline', ['sending']);
    for (const text of ['Missed 1', 'Missed 2', 'Missed 3']) await sendText(alice, text);
    await expectState(alice, 'Missed 3', ['sent']);
    await sleep(500);
    assert.equal(await message(bob, 'Missed 1').count(), 0, 'Bob got a message while offline');
    await screenshot(bob, 'bob-offline');

    await bobContext.setOffline(false);
    await expectStatus(bob, 'connected');
    for (const text of ['Missed 1', 'Missed 2', 'Missed 3']) await message(bob, text).waitFor({ timeout: PATIENCE_MS });
    // The outbox resent Bob's message with its client_msg_id once the socket was back.
    await expectState(bob, 'Sent while offline', ['sent', 'seen']);
    await message(alice, 'Sent while offline').waitFor({ timeout: PATIENCE_MS });
    assert.deepEqual(await messageTexts(alice), await messageTexts(bob), 'both show one order');

    // It was `sync` from the newest message Bob had that brought the missed ones.
    assert.ok(bobSockets.length > socketsBefore, 'no new socket');
    const socket = bobSockets.at(-1);
    const sync = socket.sent.find((frame) => frame.type === 'sync');
    assert.ok(sync, 'no sync frame sent after reconnecting');
    assert.equal(sync.after_message_id, newestBefore);
    const result = socket.received.find((frame) => frame.type === 'sync_result');
    assert.ok(result, 'no sync_result');
    assert.deepEqual(result.messages.map((m) => m.content), ['Missed 1', 'Missed 2', 'Missed 3']);
    await screenshot(bob, 'bob-back-online');
    await screenshot(alice, 'alice-final');
  });

  await step('labels, keyboard focus and phone width', async () => {
    for (const [who, page] of [['alice', alice], ['bob', bob]]) {
      const unlabeled = await page.evaluate(() => [...document.querySelectorAll('input, textarea, button')]
        .filter((element) => element.offsetParent !== null)
        .filter((element) => !(element.labels?.length || element.getAttribute('aria-label') || element.textContent.trim()))
        .map((element) => element.outerHTML));
      assert.deepEqual(unlabeled, [], `${who}: controls without an accessible name`);
    }
    // Bob's phone: no sideways scrolling, and the back button leads to the chat list by keyboard.
    const overflow = await bob.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone`);
    await bob.getByRole('button', { name: 'Chats' }).focus();
    await bob.keyboard.press('Enter');
    await bob.getByRole('heading', { name: 'Chats' }).waitFor();
    assert.equal(await bob.locator('.conversation').isVisible(), false);
    await screenshot(bob, 'bob-chat-list-phone');
  });

  await step('no console error, page error or failed request', async () => {
    assert.deepEqual(problems, []);
  });
} catch (error) {
  failure = error;
  await screenshot(alice, 'failure-alice').catch(() => {});
  await screenshot(bob, 'failure-bob').catch(() => {});
} finally {
  await browser.close();
  clearTimeout(failTimer);
}

const passed = steps.filter((s) => s.ok).length;
if (failure) {
  console.error(`\nFAIL: ${failure.stack ?? failure}`);
  if (problems.length) console.error(`Also seen:\n  ${problems.join('\n  ')}`);
}
console.log(`\nScreenshots: ${ARTIFACTS}`);
console.log(`web: ${passed} passed, ${failure ? 1 : 0} failed`);
process.exit(failure ? 1 : 0);
