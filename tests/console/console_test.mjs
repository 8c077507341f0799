// The web console in a real browser (ctest `console`; docs/console.md):
//   node tests/console/console_test.mjs BUILD_DIR
// starts the example step services, a first `usher serve` with group-booking
// v1 that leaves a booking pinned to it, then `usher serve` with v2 and a
// token; books a completed, a compensated, a stuck and a hostile-input group
// booking through the API (and, for the batch case at the end, a second stuck
// one), then
// drives Debian's chromium (headless, through puppeteer-core, which never
// downloads a browser) over the console. Screenshots go to
// BUILD_DIR/console-screenshots/. Exits 1 with the failed check's message, and
// when /usr/bin/chromium is missing (scripts/install-deps.sh installs it): a
// browser test that cannot run must not pass.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const build = resolve(process.argv[2] || join(root, 'build'));
const chromium = process.env.USHER_CHROMIUM || '/usr/bin/chromium';
const usherBin = join(build, 'cli/usher');
const servicesBin = join(build, 'examples/services/usher-example-services');
const shots = join(build, 'console-screenshots');

const children = [];
let work = null;
let browser = null;
let passed = 0;

function fail(message) {
  throw new Error(message);
}

function check(cond, message) {
  if (!cond) fail(message);
  passed += 1;
  console.log('  ok  ' + message);
}

// Starts a program; resolves with {child, line} once a stdout line matches
// `pattern`, rejects when it exits first or after 30 s. Its output is kept for
// the failure message.
function start(name, argv, env, pattern) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    child.output = [];
    child.label = name;
    let done = false;
    const timer = setTimeout(() => {
      if (!done) { done = true; reject(new Error(`${name} printed no line matching ${pattern} within 30 s`)); }
    }, 30000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      child.output.push(line);
      if (!done && pattern.test(line)) { done = true; clearTimeout(timer); resolvePromise({ child, line }); }
    });
    createInterface({ input: child.stderr }).on('line', (line) => child.output.push(line));
    child.on('exit', (code, signal) => {
      if (!done) { done = true; clearTimeout(timer); reject(new Error(`${name} exited (${code ?? signal}) before it was ready`)); }
    });
  });
}

async function stopAll() {
  for (const child of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

async function main() {
  if (!existsSync(chromium)) {
    fail(`${chromium} is missing: the console's browser tests need Debian's chromium (bash scripts/install-deps.sh installs it)`);
  }
  for (const bin of [usherBin, servicesBin]) if (!existsSync(bin)) fail(`${bin} is missing: build it first`);
  if (!existsSync(join(here, 'node_modules/puppeteer-core'))) {
    console.log('console: npm ci in tests/console (puppeteer-core, pinned in package-lock.json)');
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: here, stdio: 'inherit',
      env: { ...process.env, PUPPETEER_SKIP_DOWNLOAD: '1' } });
  }
  const { default: puppeteer } = await import('puppeteer-core');

  work = mkdtempSync(join(tmpdir(), 'usher-console-'));
  mkdirSync(shots, { recursive: true });
  const token = 'console-token-' + Math.random().toString(36).slice(2) + Date.now().toString(36);
  const tokenFile = join(work, 'token');
  writeFileSync(tokenFile, token + '\n');
  chmodSync(tokenFile, 0o600);

  // --- the step services and the server -----------------------------------------
  const services = await start('usher-example-services',
    [servicesBin, '--seats-port', '0', '--payments-port', '0', '--tickets-port', '0', '--notifier-port', '0'],
    {}, /^\{.*"notifier"/);
  const ports = JSON.parse(services.line);
  const env = {
    SEATS_URL: `http://127.0.0.1:${ports.seats}`,
    PAYMENTS_URL: `http://127.0.0.1:${ports.payments}`,
    TICKETS_URL: `http://127.0.0.1:${ports.tickets}`,
    NOTIFY_URL: `http://127.0.0.1:${ports.notifier}`,
  };
  const auth = { Authorization: 'Bearer ' + token };
  const serveArgs = (workflows) => [usherBin, 'serve', '--db', join(work, 'usher.db'), '--workflows', workflows,
    '--listen', '127.0.0.1:0', '--token-file', tokenFile];
  const listening = /^usher: listening on 127\.0\.0\.1:\d+/;
  const baseOf = (line) => `http://127.0.0.1:${Number(line.match(/127\.0\.0\.1:(\d+)/)[1])}`;

  // A saga pinned to an older version: a first server runs group-booking v1
  // (its holds retried after an hour) and starts a booking whose seat hold
  // gets a 503; it stops with the booking waiting for that retry. The server
  // the console talks to loads v2 (the repository's file, renumbered), and
  // the booking stays on v1, running, for the workflows page to show.
  const original = readFileSync(join(root, 'workflows/group-booking.yaml'), 'utf8');
  const v1Dir = join(work, 'workflows-v1');
  const v2Dir = join(work, 'workflows');
  mkdirSync(v1Dir);
  mkdirSync(v2Dir);
  const v1Yaml = original.replace('retry: { attempts: 3, backoff: 250ms, multiplier: 2, max_backoff: 10s }',
    'retry: { attempts: 3, backoff: 1h, multiplier: 2, max_backoff: 1h }');
  if (v1Yaml === original || !/^version: 1$/m.test(original)) fail('workflows/group-booking.yaml changed: update this test');
  writeFileSync(join(v1Dir, 'group-booking.yaml'), v1Yaml);
  for (const f of readdirSync(join(root, 'workflows'))) {
    const text = readFileSync(join(root, 'workflows', f), 'utf8');
    writeFileSync(join(v2Dir, f), f === 'group-booking.yaml' ? text.replace(/^version: 1$/m, 'version: 2') : text);
  }
  const v2Yaml = readFileSync(join(v2Dir, 'group-booking.yaml'), 'utf8');
  let pinned;
  {
    const first = await start('usher serve (v1)', serveArgs(v1Dir), env, listening);
    const firstBase = baseOf(first.line);
    const res = await fetch(`${env.SEATS_URL}/_control`,
      { method: 'POST', body: JSON.stringify({ operation: 'hold-block', mode: 'transient', count: 1 }) });
    await res.text();
    if (res.status !== 200) fail(`the seats service's /_control answered ${res.status}`);
    const started = await fetch(`${firstBase}/v1/workflows/group-booking/sagas`, {
      method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ userId: 'fan-0', concertId: 'arena-2026', seats: ['Z1', 'Z2'], amount: 300 }),
    });
    pinned = await started.json();
    for (let i = 0; i < 300 && pinned.steps[0].error === null; i++) {
      await new Promise((r) => setTimeout(r, 100));
      pinned = await (await fetch(`${firstBase}/v1/sagas/${pinned.id}`, { headers: auth })).json();
    }
    check(pinned.status === 'running' && pinned.version === 1 && pinned.steps[0].error !== null,
      `booking ${pinned.id} on group-booking v1 waits an hour to retry its seat hold (${pinned.steps[0].error})`);
    const exited = new Promise((r) => first.child.once('exit', r));
    first.child.kill('SIGTERM');
    await exited;
  }

  const serve = await start('usher serve', serveArgs(v2Dir), env, listening);
  const base = baseOf(serve.line);
  console.log(`console: usher serve on ${base}`);

  // group-booking: every step over HTTP; payments.charge declines an amount
  // over 1000 (examples/services), so the saga compensates.
  async function book(input, headers = {}) {
    const res = await fetch(`${base}/v1/workflows/group-booking/sagas?wait=20s`, {
      method: 'POST', headers: { ...auth, 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(input),
    });
    const body = await res.json();
    if (res.status !== 201) fail(`starting a booking answered ${res.status}: ${JSON.stringify(body)}`);
    return body;
  }
  const booking = { userId: 'fan-1', concertId: 'arena-2026', seats: ['A1', 'A2'], amount: 300 };
  const completed = await book(booking, { 'Idempotency-Key': 'order-console-1' });
  const card = { number: '4242424242424242', cvc: '123' };  // redacted by the workflow
  const compensated = await book({ ...booking, userId: 'fan-2', seats: ['B1', 'B2'], amount: 2400, card },
    { 'X-Correlation-Id': 'checkout-console-2' });
  // Stuck: the pivot (tickets.issue) gets no answer to its first attempt (it
  // may have issued the ticket) and 503s to the next ones, so usher gives up
  // and asks an operator rather than undo a booking that may hold a ticket
  // (docs/semantics.md, "The pivot"). The service answers again before the
  // console's Retry, which then finishes the booking.
  async function control(url, operation, mode, count) {
    const res = await fetch(`${url}/_control`, { method: 'POST', body: JSON.stringify({ operation, mode, count }) });
    await res.text();
    if (res.status !== 200) fail(`${url}/_control ${operation} ${mode} answered ${res.status}`);
  }
  const sagaOf = async (id) => (await fetch(`${base}/v1/sagas/${id}`, { headers: auth })).json();
  // Made twice: one for the saga page's Retry, one (later) for the batch's.
  async function bookStuck(userId, seats) {
    await control(env.TICKETS_URL, 'issue', 'hang', 1);
    const stuckStart = await fetch(`${base}/v1/workflows/group-booking/sagas`, {
      method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...booking, userId, seats }),
    });
    const stuckId = (await stuckStart.json()).id;
    let saga = null;
    for (let i = 0; i < 300; i++) {
      saga = await sagaOf(stuckId);
      if (saga.steps.find((st) => st.name === 'confirm').attempts >= 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300));  // the hanging attempt has reached the service
    await control(env.TICKETS_URL, 'issue', 'transient');
    for (let i = 0; i < 300 && saga.status !== 'stuck'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      saga = await sagaOf(stuckId);
    }
    await control(env.TICKETS_URL, 'issue', 'ok');
    check(saga.status === 'stuck', `booking ${saga.id} (the pivot unanswered, then 503s) is stuck (${saga.error})`);
    return saga;
  }
  const stuck = await bookStuck('fan-5', ['E1', 'E2']);
  const xssText = '<img src=x onerror=alert(1)>';
  const hostile = await book({ ...booking, userId: 'fan-3', seats: ['C1', 'C2'], groupName: xssText });
  check(completed.status === 'completed', `booking ${completed.id} completed`);
  check(compensated.status === 'compensated', `booking ${compensated.id} (amount 2400, declined) compensated`);

  // --- the console's files over plain HTTP ------------------------------------------
  const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
  const rootRes = await fetch(`${base}/`, { redirect: 'manual' });
  check([302, 308].includes(rootRes.status) && rootRes.headers.get('location') === '/ui/',
    `GET / redirects to /ui/ without a token (${rootRes.status} ${rootRes.headers.get('location')})`);
  for (const [path, type] of [['/ui/', 'text/html'], ['/ui/app.js', 'text/javascript'], ['/ui/style.css', 'text/css']]) {
    const res = await fetch(base + path);
    await res.text();
    check(res.status === 200 && (res.headers.get('content-type') || '').startsWith(type),
      `GET ${path} answers 200 ${type} without a token`);
    check(res.headers.get('content-security-policy') === csp, `${path} carries the console's Content-Security-Policy`);
    check(res.headers.get('x-content-type-options') === 'nosniff' &&
      res.headers.get('referrer-policy') === 'no-referrer' && res.headers.get('cache-control') === 'no-cache',
    `${path} carries nosniff, Referrer-Policy: no-referrer and Cache-Control: no-cache`);
  }
  const missing = await fetch(`${base}/ui/nope.js`);
  await missing.text();
  check(missing.status === 404, 'an unknown /ui/ file answers 404');
  const noToken = await fetch(`${base}/v1/sagas`);
  await noToken.text();
  check(noToken.status === 401, 'the API still needs the token');

  // --- the browser ---------------------------------------------------------------------
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,  // puppeteer passes --headless=new
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-default-apps'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const requests = [];
  const dialogs = [];
  const problems = [];
  const streams = [];  // the event stream's requests: URL and whether they carried the token
  page.on('request', (r) => {
    requests.push(r.url());
    if (r.url().includes('/v1/events/stream')) streams.push({ url: r.url(), auth: r.headers().authorization });
  });
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => {
    // A CSP violation is reported as a console error. The only errors
    // expected are the 401s that bring up the token form and the 409s of the
    // refused actions, which the browser reports as failed loads.
    if (m.type() === 'error' && !/status of (401|409)/.test(m.text())) problems.push('console error: ' + m.text());
  });

  const rowIds = () => page.$$eval('#saga-rows tr', (rows) => rows.map((r) => r.dataset.id));
  async function waitRows(pred, what, ...args) {
    try {
      await page.waitForFunction(pred, { timeout: 10000 }, ...args);
    } catch {
      fail(`${what}: the list shows ${JSON.stringify(await rowIds())}`);
    }
  }

  // The timeline's rows as drawn: step, kind, the row's y, and each bar's x,
  // width, outcome, event seq and tooltip.
  const timelineRows = () => page.$$eval('#timeline-svg .tl-row', (rs) => rs.map((r) => ({
    step: r.dataset.step,
    kind: r.dataset.kind,
    y: Number(r.querySelector('.tl-band').getAttribute('y')),
    pivot: r.querySelector('.tl-pivot') !== null,
    waits: r.querySelectorAll('.tl-wait').length,
    bars: [...r.querySelectorAll('.tl-bar')].map((b) => ({
      x: Number(b.getAttribute('x')), width: Number(b.getAttribute('width')), outcome: b.dataset.outcome,
      seq: Number(b.dataset.seq), title: b.querySelector('title').textContent,
      fromMs: Number(b.dataset.fromMs), toMs: Number(b.dataset.toMs),
    })),
  })));

  // The token form, then the list.
  await page.goto(`${base}/`, { waitUntil: 'load' });
  check(page.url().startsWith(`${base}/ui/`), `the browser lands on /ui/ (${page.url()})`);
  await page.waitForSelector('#token-view:not([hidden])', { timeout: 10000 });
  check(true, 'the API answered 401 and the console asks for the token');
  await page.type('#token-input', token);
  await page.click('#token-form button[type=submit]');
  await waitRows(() => document.querySelectorAll('#saga-rows tr').length >= 3, 'the list after the token');
  let ids = await rowIds();
  check(ids.includes(completed.id) && ids.includes(compensated.id) && ids.includes(stuck.id) && ids.includes(hostile.id),
    'after the token the list shows the completed, the compensated, the stuck and the hostile saga');
  const rowStatus = (id) => page.$eval(`#saga-rows tr[data-id="${id}"] .badge`, (b) => b.textContent);
  check(await rowStatus(completed.id) === 'completed' && await rowStatus(compensated.id) === 'compensated' &&
    await rowStatus(stuck.id) === 'stuck', 'each row shows its saga\'s status');
  const countText = await page.$eval('#counts a[data-status="compensated"]', (a) => a.textContent);
  check(countText === 'compensated 1', `the counts show one compensated saga (${countText})`);
  // Live updates come from the event stream, opened from the feed's end with the token in a header.
  await page.waitForFunction(() => /event stream/.test(document.querySelector('#live').textContent), { timeout: 10000 })
    .catch(() => fail('the console did not open the event stream'));
  const stats0 = await (await fetch(`${base}/v1/stats`, { headers: auth })).json();
  check(streams.length >= 1 && streams.every((r) => r.auth === 'Bearer ' + token) &&
    /\/v1\/events\/stream\?after=\d+$/.test(streams[0].url) && streams[0].url !== `${base}/v1/events/stream?after=0` &&
    Number(streams[0].url.split('after=')[1]) <= Number(stats0.last_cursor),
  `the console follows GET /v1/events/stream from the feed's end, the token in its Authorization header (${streams[0]?.url})`);
  const stored = await page.evaluate(() => ({ session: sessionStorage.getItem('usher.token'), local: localStorage.length }));
  check(stored.session === token && stored.local === 0, 'the token is kept in sessionStorage, nothing in localStorage');
  await page.screenshot({ path: join(shots, 'sagas.png'), fullPage: true });

  // The stuck count is a link to the stuck sagas.
  await page.click('#counts a[data-status="stuck"]');
  await waitRows((id) => location.hash.includes('status=stuck') && document.querySelectorAll('#saga-rows tr').length === 1 &&
    document.querySelector('#saga-rows tr').dataset.id === id, 'the stuck count', stuck.id);
  check(await page.$eval('#filter-status', (s) => s.value) === 'stuck', 'the stuck count lists the stuck saga alone');
  await page.screenshot({ path: join(shots, 'sagas-stuck.png'), fullPage: true });

  // The status filter narrows the list, is kept in the hash, and survives live updates.
  await page.select('#filter-status', 'completed');
  await waitRows(() => location.hash.includes('status=completed') &&
    [...document.querySelectorAll('#saga-rows tr .badge')].every((b) => b.textContent === 'completed') &&
    document.querySelectorAll('#saga-rows tr').length === 2, 'the status filter');
  ids = await rowIds();
  check(!ids.includes(compensated.id) && ids.includes(completed.id), 'status=completed leaves the compensated saga out');
  // With the stream up the page polls only every 30 s: a saga showing up
  // within 10 s came by the stream.
  const later = await book({ ...booking, userId: 'fan-4', seats: ['D1', 'D2'] });
  await waitRows((id) => [...document.querySelectorAll('#saga-rows tr')].some((r) => r.dataset.id === id),
    `saga ${later.id}, completed after the page loaded, by the event stream`, later.id);
  check(await page.$eval('#filter-status', (s) => s.value) === 'completed' && page.url().includes('status=completed'),
    'a new saga appears by the event stream and the filter is kept');

  // Rates by status: per minute, from the counts' growth while the page is open
  // (shown once 5 s apart; a booking then makes the next reading).
  await page.waitForFunction(() => rateSamples.length > 0 && Date.now() - rateSamples[0].t > 5500, { timeout: 15000 });
  await book({ ...booking, userId: 'fan-7', seats: ['G1', 'G2'] });
  await page.waitForFunction(() => /Per minute/.test(document.querySelector('#rates').textContent), { timeout: 10000 })
    .catch(() => fail('the list shows no rates by status'));
  const rates = await page.$$eval('#rates .rate', (rs) => Object.fromEntries(rs.map((r) => [r.dataset.status,
    Number(r.textContent.split(' ')[1])])));
  check(rates.started > 0 && rates.completed > 0 && rates.compensated === 0 &&
    JSON.stringify(Object.keys(rates)) === JSON.stringify(['started', 'completed', 'compensated', 'stuck', 'terminated']),
  `the list shows rates per minute by status (${JSON.stringify(rates)})`);

  // Paging: two a page, then the next page.
  await page.goto(`${base}/ui/#/sagas?limit=2`, { waitUntil: 'load' });
  await waitRows(() => document.querySelectorAll('#saga-rows tr').length === 2 && document.querySelector('#next-page'),
    'the first page of two');
  const first = await rowIds();
  await page.click('#next-page');
  await waitRows((f) => document.querySelectorAll('#saga-rows tr').length === 2 &&
    ![...document.querySelectorAll('#saga-rows tr')].some((r) => f.includes(r.dataset.id)), 'the second page', first);
  const second = await rowIds();
  check(second.length === 2 && page.url().includes('after='), `paging with next shows the next two sagas (${second})`);

  // Search by idempotency key and by correlation id.
  for (const [q, id] of [['order-console-1', completed.id], ['checkout-console-2', compensated.id], [hostile.id, hostile.id]]) {
    await page.goto(`${base}/ui/#/sagas?q=${encodeURIComponent(q)}`, { waitUntil: 'load' });
    await waitRows((want) => {
      const rows = [...document.querySelectorAll('#saga-rows tr')];
      return rows.length === 1 && rows[0].dataset.id === want;
    }, `searching for ${q}`, id);
    check(true, `searching for ${q} finds saga ${id} alone`);
  }

  // The compensated saga's page: its steps and their compensations.
  await page.goto(`${base}/ui/#/sagas`, { waitUntil: 'load' });
  await waitRows((id) => [...document.querySelectorAll('#saga-rows tr')].some((r) => r.dataset.id === id), 'the list',
    compensated.id);
  await page.click(`#saga-rows tr[data-id="${compensated.id}"] a`);
  await page.waitForSelector('#step-rows tr', { timeout: 10000 });
  check(page.url().endsWith(`#/sagas/${compensated.id}`), 'clicking a saga opens #/sagas/{id}');
  const steps = await page.$$eval('#step-rows tr', (rows) => rows.map((r) => ({
    name: r.dataset.step,
    status: r.querySelector('td:nth-child(3) .badge').textContent,
    compensation: (r.querySelector('td.comp .badge') || { textContent: null }).textContent,
    error: r.querySelector('td:nth-child(6)').textContent,
  })));
  const api = await (await fetch(`${base}/v1/sagas/${compensated.id}`, { headers: auth })).json();
  check(JSON.stringify(steps.map((s) => s.name)) === JSON.stringify(api.steps.map((s) => s.name)),
    `the saga page lists every step in order (${steps.map((s) => s.name)})`);
  for (const [i, s] of api.steps.entries()) {
    check(steps[i].status === s.status, `step ${s.name} shows status ${s.status}`);
    check(steps[i].compensation === (s.compensation ? s.compensation.status : null),
      `step ${s.name} shows its compensation (${s.compensation ? s.compensation.status : 'none'})`);
  }
  check(steps.some((s) => s.status === 'failed' && s.error.includes('card declined')), 'the failed step shows "card declined"');
  check(steps.filter((s) => s.status === 'compensated').length >= 1, 'the steps before it are compensated');

  // Each call's rendered request, folded under its step and its compensation.
  const targetOf = (r) => r.method + ' ' + r.url;
  const shownRequests = await page.$$eval('details.request', (ds) => Object.fromEntries(ds.map((d) =>
    [d.dataset.request, d.querySelector('summary').textContent])));
  const wantRequests = {};
  for (const st of api.steps) {
    if (st.request) wantRequests[st.name + ':action'] = 'request ' + targetOf(st.request);
    if (st.compensation?.request) wantRequests[st.name + ':compensate'] = 'request ' + targetOf(st.compensation.request);
  }
  check(Object.keys(wantRequests).length >= 4 && JSON.stringify(shownRequests) === JSON.stringify(wantRequests),
    `every request sent is shown with its method and URL (${Object.values(shownRequests).join('; ')})`);
  check(shownRequests['hold-block:compensate'] === `request POST ${env.SEATS_URL}/release` &&
    !('confirm:action' in shownRequests), 'the compensation\'s own request is shown; a step never sent has none');
  await page.click('details.request[data-request="pay:action"] summary');
  const payBody = await page.$eval('details.request[data-request="pay:action"] pre', (p) => p.textContent);
  const payApi = api.steps.find((st) => st.name === 'pay').request;
  check(JSON.stringify(JSON.parse(payBody)) === JSON.stringify(payApi.body) &&
    JSON.parse(payBody).card.number === '[redacted]' && JSON.parse(payBody).card.cvc === '[redacted]',
  `the charge's body is shown, its card number and CVC "[redacted]" (${payBody.replace(/\s+/g, ' ')})`);
  check(!(await page.content()).includes(card.number), 'the card number appears nowhere on the page');
  await page.waitForFunction(() => document.querySelectorAll('#event-rows tr').length > 0, { timeout: 10000 });
  const eventTypes = await page.$$eval('#event-rows tr td:nth-child(3)', (tds) => tds.map((t) => t.textContent));
  check(eventTypes[0] === 'SagaStarted' && eventTypes.includes('StepFailed'), `the event log is shown (${eventTypes.length} events)`);
  await page.screenshot({ path: join(shots, 'saga-compensated.png'), fullPage: true });

  // Its timeline: bars for the forward steps, then the compensations running
  // back in reverse step order, each after the failed step's bar.
  await page.waitForSelector('#timeline-svg .tl-row[data-kind="compensate"] .tl-bar', { timeout: 10000 })
    .catch(() => fail('the compensated saga\'s timeline has no compensation bar'));
  const rows = await timelineRows();
  const forward = rows.filter((r) => r.kind === 'action');
  const undo = rows.filter((r) => r.kind === 'compensate');
  check(JSON.stringify(forward.map((r) => r.step)) === JSON.stringify(api.steps.map((s) => s.name)),
    `the timeline has a row per step in order (${forward.map((r) => r.step)})`);
  const failedStep = api.steps.find((s) => s.status === 'failed');
  const failedBar = forward.find((r) => r.step === failedStep.name).bars.at(-1);
  check(failedBar && failedBar.outcome === 'failed', `step ${failedStep.name}'s bar is drawn as a business failure`);
  const done = api.steps.filter((s) => s.compensation !== null).map((s) => s.name);
  check(done.every((n) => forward.find((r) => r.step === n).bars.some((b) => b.outcome === 'ok')),
    `the steps done before it (${done}) have ok bars`);
  check(JSON.stringify(undo.map((r) => r.step)) === JSON.stringify([...done].reverse()),
    `the compensation rows run in reverse step order (${undo.map((r) => r.step)})`);
  check(undo.every((r) => r.y > forward.at(-1).y), 'the compensation rows are drawn below the forward steps');
  const undoBars = undo.map((r) => r.bars[0]);
  // A bar is drawn at least 2 px wide, so where it ends is read from its true
  // end (ms from the start): the failure and the first undo may share a millisecond.
  check(undoBars.every((b) => b && b.outcome === 'ok' && b.fromMs >= failedBar.toMs && b.x >= failedBar.x),
    `every compensation bar starts after the failed step's bar (x ${undoBars.map((b) => b.x.toFixed(1))} from ` +
    `${failedBar.x.toFixed(1)}; +${undoBars.map((b) => b.fromMs)} ms ≥ its end, +${failedBar.toMs} ms)`);
  check(undoBars.every((b, i) => i === 0 || (b.x >= undoBars[i - 1].x && b.seq > undoBars[i - 1].seq)),
    'each compensation starts no earlier than the one before it (x and event order)');
  check(rows.every((r) => r.bars.every((b) => /\d (ms|s|m)\b/.test(b.title))), 'every bar\'s tooltip gives its duration');
  const ticks = await page.$$eval('#timeline-svg .tl-tick', (t) => t.map((n) => n.textContent));
  check(ticks.length >= 2 && ticks[0] === '0 ms' && ticks.every((t) => /^[\d.]+ (ms|s)$|^\d+ m \d+ s$/.test(t)),
    `the time axis is labelled with durations (${ticks.join(', ')})`);
  await page.screenshot({ path: join(shots, 'saga-timeline.png') });

  // Retry and cancel of a finished saga: the API's 409 detail is shown.
  for (const action of ['retry', 'cancel']) {
    const refused = await fetch(`${base}/v1/sagas/${compensated.id}/${action}`, { method: 'POST', headers: auth });
    const problem = await refused.json();
    check(refused.status === 409, `${action} of a compensated saga is refused 409 by the API`);
    await page.click('#' + action);
    await page.waitForSelector('#action-error', { timeout: 10000 });
    const shown = await page.$eval('#action-error', (p) => p.textContent);
    check(shown.includes(problem.detail), `the console shows the 409's detail for ${action}: "${shown}"`);
  }
  const after = await (await fetch(`${base}/v1/sagas/${compensated.id}`, { headers: auth })).json();
  check(after.status === 'compensated', 'the refused actions changed nothing');

  // Retry of the stuck saga from its page: accepted, and the booking
  // finishes (the ticket service answers again).
  await page.goto(`${base}/ui/#/sagas/${stuck.id}`, { waitUntil: 'load' });
  await page.waitForFunction(() => document.querySelector('#saga-summary .badge')?.textContent === 'stuck', { timeout: 10000 })
    .catch(() => fail('the stuck saga\'s page does not show it stuck'));
  await page.screenshot({ path: join(shots, 'saga-stuck.png'), fullPage: true });
  await page.waitForSelector('#timeline-svg .tl-marker', { timeout: 10000 })
    .catch(() => fail('the stuck saga\'s timeline shows no stuck marker'));
  const stuckRows = await timelineRows();
  const pivotRows = stuckRows.filter((r) => r.pivot);
  check(pivotRows.length === 1 && pivotRows[0].step === 'confirm' && pivotRows[0].kind === 'action',
    'the stuck saga\'s timeline marks the pivot (confirm) and no other step');
  check(pivotRows[0].bars.length >= 2 && pivotRows[0].waits >= 1 && pivotRows[0].bars[0].outcome !== 'ok',
    `the pivot's attempts are bars with retry waits between them (${pivotRows[0].bars.map((b) => b.outcome)})`);
  check(await page.$eval('#timeline-svg .tl-marker', (m) => m.dataset.step) === 'confirm',
    'the timeline marks where the saga got stuck');
  // An opened request stays open while the page follows the saga.
  await page.click('details.request[data-request="confirm:action"] summary');
  await page.click('#retry');
  await page.waitForFunction(() => document.querySelector('#action-result .notice.ok'), { timeout: 10000 })
    .catch(() => fail('retry of the stuck saga was not accepted'));
  await page.waitForFunction(() => document.querySelector('#saga-summary .badge')?.textContent === 'completed',
    { timeout: 15000 }).catch(() => fail('after retry the stuck saga did not complete on its page'));
  const retried = await sagaOf(stuck.id);
  check(retried.status === 'completed', 'Retry of the stuck saga from the console makes it finish (completed)');
  check(await page.$eval('details.request[data-request="confirm:action"]', (d) => d.open),
    'the request the user opened is still open after the page redrew the saga');

  // "As it stood at" the moment it got stuck: the earlier status, fewer bars,
  // a past view that says so, and the way back to now.
  await page.waitForFunction(() => document.querySelectorAll('#timeline-svg .m-OperatorRetried').length === 1,
    { timeout: 10000 }).catch(() => fail('the retried saga\'s timeline does not mark the operator\'s retry'));
  await page.screenshot({ path: join(shots, 'saga-timeline-retried.png') });
  const barsNow = (await timelineRows()).flatMap((r) => r.bars).length;
  const stuckLog = (await (await fetch(`${base}/v1/sagas/${stuck.id}/events`, { headers: auth })).json()).events;
  const stuckEvent = stuckLog.find((e) => e.type === 'SagaStuck');
  await page.$eval('#at-input', (input, iso) => {
    const d = new Date(iso);
    const pad = (n, w = 2) => String(n).padStart(w, '0');
    input.value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:` +
      `${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }, stuckEvent.occurred_at);
  const typed = await page.$eval('#at-input', (i) => i.value);
  await new Promise((r) => setTimeout(r, 2500));  // a poll later, the time being chosen is still there
  check(typed !== '' && await page.$eval('#at-input', (i) => i.value) === typed,
    `the time typed into "as it stood at" survives a refresh (${typed})`);
  await page.click('#at-form button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#past-view') &&
    document.querySelector('#saga-summary .badge')?.textContent === 'stuck', { timeout: 10000 })
    .catch(() => fail('"as it stood at" the SagaStuck event does not show the saga stuck in a past view'));
  check(page.url().includes('?at=' + encodeURIComponent(new Date(stuckEvent.occurred_at).toISOString())),
    'the chosen time is in the URL (?at=)');
  const pastText = await page.$eval('#past-view', (p) => p.textContent);
  check(/Past view/.test(pastText) && pastText.includes('not as it is now'), `the page says it is a past view: "${pastText}"`);
  await page.waitForFunction(() => document.querySelectorAll('#timeline-svg .tl-bar').length > 0, { timeout: 10000 });
  const pastRows = await timelineRows();
  const pastBars = pastRows.flatMap((r) => r.bars);
  check(pastBars.length < barsNow && pastBars.every((b) => b.seq <= stuckEvent.seq) &&
    await page.$$eval('#timeline-svg .m-OperatorRetried', (m) => m.length) === 0,
  `the past timeline stops at that time (${pastBars.length} bars then, ${barsNow} now, no retry yet)`);
  const pastEvents = await page.$$eval('#event-rows tr td:first-child', (tds) => tds.map((t) => Number(t.textContent)));
  check(pastEvents.length === stuckEvent.seq && pastEvents.at(-1) === stuckEvent.seq,
    `the past event log ends with the SagaStuck event (seq ${stuckEvent.seq})`);
  check(await page.$eval('#retry', (b) => b.disabled) && await page.$eval('#cancel', (b) => b.disabled),
    'Cancel and Retry are disabled in a past view');
  await page.screenshot({ path: join(shots, 'saga-as-it-stood.png'), fullPage: true });
  await page.click('#at-now');
  await page.waitForFunction(() => !document.querySelector('#past-view') &&
    document.querySelector('#saga-summary .badge')?.textContent === 'completed', { timeout: 10000 })
    .catch(() => fail('"back to now" does not show the saga completed'));
  check(page.url().endsWith(`#/sagas/${stuck.id}`), '"back to now" shows the saga as it is now');

  // The hostile input stays text, on its saga's page, and nothing runs.
  await page.goto(`${base}/ui/#/sagas/${hostile.id}`, { waitUntil: 'load' });
  await page.waitForFunction((t) => (document.querySelector('#saga-input') || {}).textContent?.includes(t),
    { timeout: 10000 }, xssText).catch(() => fail('the hostile input is not shown as text'));
  check(true, 'the input <img src=x onerror=alert(1)> is shown as text');
  await new Promise((r) => setTimeout(r, 2500));  // a poll later, still nothing
  check(await page.$$eval('img', (imgs) => imgs.filter((i) => i.getAttribute('src') === 'x').length) === 0,
    'no <img src=x> element exists');
  check(dialogs.length === 0, `no dialog opened (${JSON.stringify(dialogs)})`);
  await page.screenshot({ path: join(shots, 'saga-hostile-input.png'), fullPage: true });

  // Back and forward follow the hash.
  await page.goBack();
  await page.waitForFunction(() => location.hash.startsWith('#/sagas/'), { timeout: 10000 });
  check(page.url().endsWith(`#/sagas/${stuck.id}`), 'back returns to the previous saga page');
  await page.goForward();
  await page.waitForFunction((id) => location.hash === '#/sagas/' + id, { timeout: 10000 }, hostile.id);
  check(true, 'forward returns to the hostile saga page');

  // The workflows page: group-booking drawn as its steps in order, the pivot
  // marked, the steps after it in the retriable tail, each compensation under its step.
  const workflows = (await (await fetch(`${base}/v1/workflows`, { headers: auth })).json()).workflows;
  const gb = workflows.find((w) => w.name === 'group-booking');
  await page.click('.top nav a[href="#/workflows"]');
  await page.waitForSelector('.workflow[data-name="group-booking"] .wf-step', { timeout: 10000 })
    .catch(() => fail('the Workflows link shows no group-booking'));
  const shownWorkflows = await page.$$eval('.workflow', (ws) => ws.map((w) => w.dataset.name));
  check(JSON.stringify(shownWorkflows) === JSON.stringify(workflows.map((w) => w.name)),
    `the workflows page lists every loaded workflow (${shownWorkflows})`);
  const drawn = await page.$$eval('.workflow[data-name="group-booking"] .wf-col', (cols) => cols.map((c) => ({
    step: c.dataset.step,
    pivot: c.querySelector('.wf-step').classList.contains('wf-pivot'),
    tail: c.closest('.wf-tail') !== null,
    type: c.querySelector('.wf-step').dataset.type,
    comp: c.querySelector('.wf-comp').textContent,
  })));
  check(JSON.stringify(drawn.map((d) => d.step)) === JSON.stringify(gb.steps.map((s) => s.name)),
    `group-booking's steps are drawn in order (${drawn.map((d) => d.step)})`);
  const pivotAt = gb.steps.findIndex((s) => s.name === gb.pivot);
  check(pivotAt >= 0 && drawn.filter((d) => d.pivot).map((d) => d.step).join() === gb.pivot,
    `its pivot (${gb.pivot}) is marked, and no other step`);
  check(drawn.every((d, i) => d.tail === (i > pivotAt)) && drawn.slice(pivotAt + 1).every((d) => d.type === 'retriable'),
    `the steps after the pivot are drawn as the retriable tail (${drawn.filter((d) => d.tail).map((d) => d.step)})`);
  check(gb.steps.every((s, i) => drawn[i].comp === (s.compensate ? '↩ ' + s.compensate : 'no compensation')),
    `each step's compensation is drawn under it (${drawn.map((d) => d.comp)})`);
  const schemaText = await page.$eval('.workflow[data-name="group-booking"] .wf-schema', (d) => d.textContent);
  check(JSON.stringify(JSON.parse(schemaText)) === JSON.stringify(gb.input), 'its input schema is shown as JSON text');

  // Its versions: v2 loaded, and v1, no longer loaded, with the booking still pinned to it.
  const versions = await page.$$eval('.workflow[data-name="group-booking"] .wf-versions tbody tr', (rs) => rs.map((r) => ({
    version: r.dataset.version, pinned: r.classList.contains('wf-pinned'),
    unfinished: r.querySelector('td:nth-child(3)').textContent, hash: r.querySelector('td:nth-child(4)').textContent,
  })));
  const apiV1 = (gb.versions || []).find((v) => v.version === 1);
  check(versions.length === 2 && versions[0].version === '2' && !versions[0].pinned &&
    versions[0].hash === gb.hash && versions[1].version === '1' && versions[1].pinned && versions[1].unfinished === '1' &&
    apiV1 && apiV1.unfinished === 1 && apiV1.loaded === false && versions[1].hash === apiV1.hash,
  `its versions are shown: v2 loaded, v1 pinned by the unfinished booking ${pinned.id} (${JSON.stringify(versions)})`);
  // Its YAML source, read when opened.
  await page.click('.workflow[data-name="group-booking"] details.wf-source summary');
  await page.waitForFunction(() => document.querySelector('.workflow[data-name="group-booking"] pre.yaml')
    ?.textContent.startsWith('#'), { timeout: 10000 }).catch(() => fail('the YAML source was not shown'));
  const yamlShown = await page.$eval('.workflow[data-name="group-booking"] pre.yaml', (p) => p.textContent);
  check(yamlShown === v2Yaml, `its YAML source is shown as loaded (${yamlShown.length} characters)`);
  await page.screenshot({ path: join(shots, 'workflows.png'), fullPage: true });
  await page.click('.workflow[data-name="group-booking"] a.wf-sagas');
  await waitRows(() => location.hash.includes('workflow=group-booking') &&
    document.querySelector('#filter-workflow')?.value === 'group-booking' &&
    document.querySelectorAll('#saga-rows tr').length > 0, 'the link from a workflow to its sagas');
  check(true, 'a workflow links to the sagas list filtered by it');

  // Batch: a second stuck saga and a completed one, "Retry selected", an
  // in-page confirmation, then one result per saga: 202 for the stuck one,
  // the API's 409 for the completed one; the stuck one then finishes.
  const stuck2 = await bookStuck('fan-6', ['F1', 'F2']);
  await page.goto(`${base}/ui/#/sagas`, { waitUntil: 'load' });
  await waitRows((a, b) => [a, b].every((id) => document.querySelector(`#saga-rows tr[data-id="${id}"]`)),
    'the list with the batch\'s sagas', stuck2.id, completed.id);
  check(await page.$eval('#batch-retry', (b) => b.disabled) && await page.$eval('#batch-cancel', (b) => b.disabled),
    'with nothing selected the batch buttons are disabled');
  await page.click('#select-all');
  const allPicked = await page.$$eval('#saga-rows input.pick', (bs) => bs.every((b) => b.checked));
  check(allPicked && (await page.$eval('#batch-count', (s) => s.textContent)) ===
    `${(await rowIds()).length} selected`, '"select all on this page" selects every row');
  await page.click('#select-all');
  check(await page.$$eval('#saga-rows input.pick', (bs) => bs.every((b) => !b.checked)), 'and clears them again');
  await page.click(`#saga-rows tr[data-id="${stuck2.id}"] input.pick`);
  await page.click(`#saga-rows tr[data-id="${completed.id}"] input.pick`);
  check(page.url().endsWith('#/sagas'), 'a click on a row\'s box selects it without opening the saga');
  await new Promise((r) => setTimeout(r, 2500));  // a poll later, the selection stands
  const picked = await page.$$eval('#saga-rows input.pick', (bs) => bs.filter((b) => b.checked).map((b) => b.dataset.id));
  check(picked.length === 2 && picked.includes(stuck2.id) && picked.includes(completed.id),
    'the selection survives the 2 s refresh');
  await page.click('#batch-retry');
  await page.waitForSelector('#batch-confirm:not([hidden]) #batch-confirm-yes', { timeout: 10000 })
    .catch(() => fail('"Retry selected" asks for no confirmation'));
  const confirmText = await page.$eval('#batch-confirm-text', (p) => p.textContent);
  check(/^Retry 2 selected sagas\?/.test(confirmText), `the confirmation names the action and the count: "${confirmText}"`);
  const refusedRetry = await fetch(`${base}/v1/sagas/${completed.id}/retry`, { method: 'POST', headers: auth });
  const refusedProblem = await refusedRetry.json();
  check(refusedRetry.status === 409, `retry of a completed saga is refused 409 by the API ("${refusedProblem.detail}")`);
  await page.click('#batch-confirm-yes');
  await page.waitForFunction(() => document.querySelectorAll('#batch-results li').length === 2 &&
    document.querySelector('#batch-dismiss'), { timeout: 15000 })
    .catch(() => fail('the batch shows no result per saga'));
  const outcomes = await page.$$eval('#batch-results li', (lis) => lis.map((l) => ({
    id: l.dataset.id, outcome: l.dataset.outcome, text: l.textContent })));
  const okOne = outcomes.find((o) => o.id === stuck2.id);
  const badOne = outcomes.find((o) => o.id === completed.id);
  check(okOne && okOne.outcome === 'ok' && okOne.text.includes('202'), `the stuck saga's retry succeeded: "${okOne?.text}"`);
  check(badOne && badOne.outcome === 'refused' && badOne.text.includes('409') && badOne.text.includes(refusedProblem.detail),
    `the completed saga's retry shows the API's 409 detail: "${badOne?.text}"`);
  let finished = null;
  for (let i = 0; i < 150; i++) {
    finished = await sagaOf(stuck2.id);
    if (finished.status === 'completed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  check(finished.status === 'completed', `the batch-retried stuck saga finishes (${finished.status})`);
  await new Promise((r) => setTimeout(r, 2500));  // a poll later, the results are still there
  check(await page.$$eval('#batch-results li', (lis) => lis.length) === 2 &&
    await page.$eval(`#saga-rows tr[data-id="${stuck2.id}"] .badge`, (b) => b.textContent) === 'completed',
  'the results stay through the refresh, which shows the saga completed');
  await page.screenshot({ path: join(shots, 'batch.png'), fullPage: true });
  await page.click('#batch-dismiss');
  check(await page.$eval('#batch-results', (d) => d.hidden), 'Dismiss clears the results');
  check(dialogs.length === 0, `no dialog opened during the batch (${JSON.stringify(dialogs)})`);

  // Everything the page asked for went to this server, and the token never in a URL.
  // data: URLs are no requests to anywhere: chromium draws the date picker's
  // icon from one.
  const network = requests.filter((u) => !u.startsWith('data:'));
  const foreign = network.filter((u) => !u.startsWith(base + '/'));
  check(foreign.length === 0, `all ${network.length} requests went to ${base} (${JSON.stringify(foreign.slice(0, 5))})`);
  check(!requests.some((u) => u.includes(token)), 'the token appears in no URL');
  check(problems.length === 0, `no page error, CSP violation or console error (${JSON.stringify(problems.slice(0, 5))})`);
}

let code = 0;
try {
  await main();
  console.log(`console: PASS, ${passed} checks; screenshots in ${shots}`);
} catch (e) {
  code = 1;
  console.error(`console: FAIL: ${e.message}`);
  for (const child of children) {
    console.error(`---- ${child.label} (last 30 lines)`);
    console.error(child.output.slice(-30).join('\n'));
  }
} finally {
  if (browser) await browser.close().catch(() => {});
  await stopAll();
  if (work) rmSync(work, { recursive: true, force: true });
}
process.exit(code);
