import { expect, Page, test } from '@playwright/test';
import { open, signUp, snap, uniqueEmail } from './helpers';

const assistant = (page: Page) => page.locator('[data-testid="message"][data-role="assistant"]');
const user = (page: Page) => page.locator('[data-testid="message"][data-role="user"]');

test('chat with the demo model: it streams, Stop keeps what arrived, a reload shows the history', async ({ page }) => {
  await signUp(page, uniqueEmail('chat'));
  await open(page, '/chat');
  await expect(page.getByTestId('demo-badge')).toBeVisible();
  await expect(page.getByTestId('model-picker')).toHaveValue('demo');
  await expect(page.getByTestId('empty-thread')).toBeVisible();
  await snap(page, 'chat-empty');

  // Shift+Enter is a new line, Enter sends.
  const composer = page.getByLabel('Message');
  await composer.fill('Hello demo');
  await composer.press('Shift+Enter');
  await composer.pressSequentially('second line');
  await expect(composer).toHaveValue('Hello demo\nsecond line');
  await composer.press('Enter');
  await expect(composer).toHaveValue('');
  await expect(user(page).first()).toContainText('Hello demo');

  // It streams: the reply grows while the Stop button is shown.
  const first = assistant(page).first();
  await expect(first).toHaveAttribute('data-status', 'streaming');
  await expect(page.getByTestId('stop')).toBeVisible();
  await expect.poll(async () => (await first.innerText()).length).toBeGreaterThan(40);
  const early = (await first.innerText()).length;
  await expect.poll(async () => (await first.innerText()).length).toBeGreaterThan(early + 40);
  await snap(page, 'chat-streaming');

  // Done: stored, a conversation of its own, Markdown rendered, usage shown.
  await expect(page.locator('[data-role="assistant"][data-status="complete"]')).toHaveCount(1, { timeout: 20_000 });
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}$/);
  await expect(first.locator('strong').first()).toHaveText('demo model');
  await expect(first.locator('pre code')).toContainText('hello from the demo model');
  await expect(first.getByTestId('usage')).toContainText(/^demo · \d+ in \+ \d+ out tokens · \$0\.00$/);
  const wholeReply = (await first.locator('.markdown').innerText()).trim().length;
  await expect(page.getByTestId('conversation-list').getByRole('link', { name: 'Hello demo', exact: true })).toBeVisible();
  await expect(page.getByTestId('conversation-title')).toHaveText('Hello demo');

  // A second message, stopped half-way.
  await composer.fill('Now stop me');
  await page.getByTestId('send').click();
  const second = assistant(page).nth(1);
  await expect(second).toHaveAttribute('data-status', 'streaming');
  // Polled often: Playwright's default back-off (up to a second between looks) let most of
  // the reply arrive before Stop was pressed on a busy machine.
  await expect
    .poll(async () => (await second.innerText()).length, { intervals: [50] })
    .toBeGreaterThan(30);
  await page.getByTestId('stop').click();
  await expect(second).toHaveAttribute('data-status', 'stopped');
  await expect(second).toContainText('Stopped');
  // What the page showed at the stop: the text as it arrived (replies are rendered as Markdown
  // by the server once stored, a moment later; if that moment has come, the rendered text).
  const stopped = await second.locator('.markdown').evaluate((el) => ({
    text: (el as HTMLElement).innerText,
    asArrived: el.classList.contains('whitespace-pre-wrap'),
  }));
  await expect(page.getByTestId('send')).toBeVisible();
  await snap(page, 'chat-stopped');

  // After a reload: both exchanges from the server, the stopped one as it was cut.
  await page.waitForTimeout(600);
  await page.reload();
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
  await expect(user(page)).toHaveCount(2);
  await expect(assistant(page)).toHaveCount(2);
  await expect(assistant(page).nth(0)).toHaveAttribute('data-status', 'complete');
  await expect(assistant(page).nth(1)).toHaveAttribute('data-status', 'stopped');
  // What the server had sent when the connection closed: what the page showed, and what was
  // still on the wire while Stop travelled (a release build streams fast, so that can be a few
  // tokens); never the whole reply (the two prompts are nearly as long, so are their replies).
  const rendered = (await assistant(page).nth(1).locator('.markdown').innerText()).trim();
  expect(rendered.length).toBeLessThan(wholeReply - 200);
  const id = /\/chat\/([0-9a-f-]{36})$/.exec(page.url())![1];
  const stored = await page.request.get(`/api/conversations/${id}`);
  expect(stored.ok()).toBe(true);
  const replies = (await stored.json()).data.messages.filter((m: { role: string }) => m.role === 'assistant');
  const kept = stopped.asArrived ? (replies[1].content as string) : rendered;
  expect(kept.startsWith(stopped.text.trim()), `kept: ${kept}\nshown: ${stopped.text}`).toBe(true);
  expect(replies[1].content.length).toBeLessThan(replies[0].content.length - 200);
  await expect(assistant(page).nth(1).getByTestId('usage')).toContainText('(estimated)');
  await snap(page, 'chat-after-reload');
});

test('a failed send shows why, keeps the text, and Retry sends it', async ({ page, context }) => {
  await signUp(page, uniqueEmail('offline'));
  await open(page, '/chat');
  await expect(page.getByTestId('model-picker')).toHaveValue('demo');
  await context.setOffline(true);
  const composer = page.getByLabel('Message');
  await composer.fill('Are you there?');
  await composer.press('Enter');
  await expect(page.getByTestId('send-error')).toBeVisible();
  await expect(composer).toHaveValue('Are you there?');
  await expect(assistant(page)).toHaveCount(0);
  await snap(page, 'chat-send-error');
  await context.setOffline(false);
  await page.getByTestId('send-error').getByRole('button', { name: 'Retry' }).click();
  await expect(page.locator('[data-role="assistant"][data-status="complete"]')).toHaveCount(1, { timeout: 20_000 });
  await expect(page.getByTestId('send-error')).toHaveCount(0);
});

test('rename and delete a conversation; others cannot open it', async ({ page, browser }) => {
  await signUp(page, uniqueEmail('owner'));
  await open(page, '/chat');
  await expect(page.getByTestId('model-picker')).toHaveValue('demo');
  await page.getByLabel('Message').fill('Plans for Friday');
  await page.getByLabel('Message').press('Enter');
  await expect(page.locator('[data-role="assistant"][data-status="complete"]')).toHaveCount(1, { timeout: 20_000 });
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}$/);
  const url = page.url();

  await page.getByRole('button', { name: 'Rename' }).click();
  await page.getByLabel('Title').fill('Friday');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page.getByTestId('conversation-title')).toHaveText('Friday');
  await expect(page.getByTestId('conversation-list').getByRole('link', { name: 'Friday' })).toBeVisible();

  // Someone else gets "not found" for it.
  const other = await browser.newPage();
  await signUp(other, uniqueEmail('other'));
  await open(other, new URL(url).pathname);
  await expect(other.getByRole('alert')).toContainText('conversation not found');
  await expect(other.locator('[data-testid="message"]')).toHaveCount(0);
  await other.close();

  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('button', { name: 'Delete for good' }).click();
  await expect(page).toHaveURL(/\/chat$/);
  await expect(page.getByText('No conversations yet.')).toBeVisible();
});

test('the chat works at 375 px wide', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 740 });
  await signUp(page, uniqueEmail('narrow'));
  await open(page, '/chat');
  await expect(page.getByTestId('model-picker')).toHaveValue('demo');
  await page.getByLabel('Message').fill('Small screen');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.locator('[data-role="assistant"][data-status="complete"]')).toHaveCount(1, { timeout: 20_000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  // The conversation list folds away behind a button.
  await expect(page.getByRole('navigation', { name: 'Your conversations' })).toBeHidden();
  await page.getByRole('button', { name: 'Conversations' }).click();
  await expect(page.getByRole('navigation', { name: 'Your conversations' })).toBeVisible();
  await snap(page, 'chat-375');
});

test('a conversation started by a program shows up in the chat, its system prompt set apart', async ({ page, baseURL }) => {
  await signUp(page, uniqueEmail('api'));
  const res = await page.request.post('/api/chat/completions', {
    headers: { Origin: baseURL! },
    data: {
      model: 'demo',
      messages: [
        { role: 'system', content: 'Answer in one line.' },
        { role: 'user', content: 'Sent by a script' },
      ],
    },
  });
  expect(res.status()).toBe(200);
  const body = await res.json();
  expect(body.usage.total_tokens).toBeGreaterThan(0);
  await open(page, `/chat/${body.conversation_id}`);
  await expect(page.locator('[data-testid="message"][data-role="system"]')).toContainText('System: Answer in one line.');
  await expect(user(page)).toHaveText(['Sent by a script'].map((t) => new RegExp(t)));
  await expect(assistant(page)).toHaveCount(1);
  await expect(page.getByTestId('conversation-list').getByRole('link', { name: 'Sent by a script' })).toBeVisible();
  await snap(page, 'chat-from-api');
});

test('the keyboard is enough: Enter sends, Escape stops', async ({ page }) => {
  await signUp(page, uniqueEmail('keys'));
  await open(page, '/chat');
  await expect(page.getByTestId('model-picker')).toHaveValue('demo');
  await page.getByLabel('Message').focus();
  await page.keyboard.type('Typed, not clicked');
  await page.keyboard.press('Enter');
  const reply = assistant(page).first();
  await expect(reply).toHaveAttribute('data-status', 'streaming');
  await expect.poll(async () => (await reply.innerText()).length).toBeGreaterThan(20);
  await page.keyboard.press('Escape');
  await expect(reply).toHaveAttribute('data-status', 'stopped');
  // The new chat gets its address (the page is mounted anew); the composer keeps the focus.
  await expect(page).toHaveURL(/\/chat\/[0-9a-f-]{36}$/);
  await expect(page.getByLabel('Message')).toBeFocused();
  await page.keyboard.type('and on');
  await expect(page.getByLabel('Message')).toHaveValue('and on');
});
