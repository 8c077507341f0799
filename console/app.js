// The usher console (docs/console.md): plain JavaScript over the trigger API.
//
// Rules this file keeps:
// - Every value that comes from a saga reaches the page through textContent
//   or createElement, never as HTML: an input such as <img src=x onerror=…>
//   is shown as the text it is. The page's CSP forbids inline script anyway.
// - The bearer token lives in sessionStorage only (this tab, until it closes),
//   never in a URL or localStorage, and is sent as `Authorization: Bearer`.
// - Where the user is lives in the URL hash (#/sagas?status=…&after=…,
//   #/sagas/{id}, #/workflows), so back and forward work and a refresh keeps the place.
// - Live updates follow the event feed (GET /v1/events/stream, read with
//   fetch, which can send the token where EventSource cannot): an event that
//   concerns the page shown redraws it at once. While the stream is down the
//   page is read again every 2 s instead. A redraw replaces the data only,
//   never the filter form the user may be typing in, nor what they opened.
'use strict';

const POLL_MS = 2000;          // re-read the page this often while the event stream is down
const STREAM_POLL_MS = 30000;  // and this often while it is up, in case a change came another way
const EVENT_DELAY_MS = 250;    // events arriving together redraw the page once
const RATE_WINDOW_MS = 60000;  // rates by status are over the last minute
const TOKEN_KEY = 'usher.token';
const STATUSES = ['running', 'compensating', 'completed', 'compensated', 'stuck', 'terminated'];
// `limit` (sagas a page) has no field in the form; it is kept when given in the hash.
const LIST_PARAMS = ['status', 'workflow', 'created_after', 'created_before', 'q', 'limit', 'after'];

// ---- small DOM helpers --------------------------------------------------------

// Appends nodes and strings (as text nodes) to `node`, skipping null and undefined.
function appendAll(node, children) {
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// el('td', {className: 'x'}, 'text', child…): strings become text nodes.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node[k] = v;
  }
  appendAll(node, children);
  return node;
}

function badge(status) {
  return el('span', { className: 'badge s-' + String(status) }, status === null ? '—' : String(status));
}

function jsonBlock(value) {
  if (value === null || value === undefined) return el('span', { className: 'muted' }, '—');
  return el('pre', { className: 'json' }, JSON.stringify(value, null, 2));
}

function text(value) {
  return value === null || value === undefined ? '—' : String(value);
}

// Keeps `box` (a <details>) open or folded as the user left it, across
// redraws that make it anew: `opened` holds the keys of those open.
function rememberOpen(box, opened, key) {
  box.open = opened.has(key);
  box.addEventListener('toggle', () => {
    if (box.open) opened.add(key);
    else opened.delete(key);
  });
  return box;
}

// ---- the API ------------------------------------------------------------------

class NeedToken extends Error {}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  if (res.status === 401) {
    showTokenForm(token ? 'That token was refused.' : '');
    throw new NeedToken('the API needs a token');
  }
  let data = null;
  const type = res.headers.get('Content-Type') || '';
  if (type.includes('json')) data = await res.json();
  if (!res.ok) {
    const detail = data && typeof data.detail === 'string' ? data.detail : res.status + ' ' + res.statusText;
    throw new ApiError(res.status, detail);
  }
  return data;
}

// ---- the token form -------------------------------------------------------------

function showTokenForm(message) {
  document.getElementById('token-view').hidden = false;
  document.getElementById('view').hidden = true;
  document.getElementById('token-error').textContent = message || '';
  document.getElementById('token-input').focus();
}

function setupTokenForm() {
  document.getElementById('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = document.getElementById('token-input');
    const token = input.value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    input.value = '';
    document.getElementById('token-view').hidden = true;
    document.getElementById('view').hidden = false;
    render();
    wakeFeed();
  });
}

// ---- routing --------------------------------------------------------------------

// The hash as {path, params}: "#/sagas?status=stuck" → {path: "/sagas", params}.
function currentRoute() {
  const hash = location.hash.replace(/^#/, '') || '/sagas';
  const q = hash.indexOf('?');
  const path = q < 0 ? hash : hash.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : hash.slice(q + 1));
  return { path, params };
}

function listHash(params) {
  const kept = new URLSearchParams();
  for (const k of LIST_PARAMS) if (params.get(k)) kept.set(k, params.get(k));
  const s = kept.toString();
  return '#/sagas' + (s ? '?' + s : '');
}

let view = null;  // the page shown: {refresh(), stop(), wants(event)?}
let pollTimer = null;
let pollDue = Infinity;  // when pollTimer fires
let refreshing = false;  // a refresh is under way: never two at once
let refreshAgain = false;

function render() {
  if (view) view.stop();
  clearTimeout(pollTimer);
  pollDue = Infinity;
  const { path, params } = currentRoute();
  const root = document.getElementById('view');
  root.replaceChildren();
  const m = path.match(/^\/sagas\/(.+)$/);
  if (m) view = sagaPage(root, decodeURIComponent(m[1]), params);
  else if (path === '/workflows') view = workflowsPage(root);
  else view = listPage(root, params);
  for (const a of document.querySelectorAll('.top nav a')) {
    a.classList.toggle('active', (path === '/workflows') === (a.getAttribute('href') === '#/workflows'));
  }
  poll();
}

// Reads the page shown again within `delay` ms (sooner if already due).
function refreshSoon(delay) {
  const due = Date.now() + delay;
  if (due >= pollDue) return;
  clearTimeout(pollTimer);
  pollDue = due;
  pollTimer = setTimeout(poll, delay);
}

// Refreshes the page shown, then again after a while: POLL_MS while the event
// stream is down, STREAM_POLL_MS while it tells of changes. One at a time: a
// refresh asked for during another runs right after it.
async function poll() {
  pollDue = Infinity;
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  const live = document.getElementById('live');
  try {
    await view.refresh();
    live.classList.remove('stale');
    live.textContent = (feed.up ? 'live (event stream) · ' : 'live (every 2 s) · ') + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof NeedToken) {
      refreshing = false;
      return;  // the token form is shown; render() starts again after it
    }
    live.classList.add('stale');
    live.textContent = 'not updated: ' + e.message;
  }
  refreshing = false;
  const again = refreshAgain;
  refreshAgain = false;
  refreshSoon(again ? 0 : feed.up ? STREAM_POLL_MS : POLL_MS);
}

// ---- the event stream -------------------------------------------------------------
//
// GET /v1/events/stream from the feed's end (`last_cursor` of GET /v1/stats),
// so nothing old is read. Each event goes to the page shown, which says
// whether it concerns it. When the stream breaks it is opened again after
// the last event received (nothing is missed), after 1 s, then up to 30 s.

const FEED_SILENCE_MS = 40000;  // the server writes at least every 15 s: silence this long is a dead stream
const feed = { up: false, cursor: null, retryMs: 1000, wake: null };

// After a token was entered: open the stream now, not after the back-off.
function wakeFeed() {
  feed.retryMs = 1000;
  if (feed.wake) feed.wake();
}

function feedState(up) {
  if (feed.up === up) return;
  feed.up = up;
  // Up: one refresh covers what changed before the stream opened. Down: back to polling.
  refreshSoon(up ? 0 : POLL_MS);
}

function onFeedEvent(event) {
  if (view && (!view.wants || view.wants(event))) refreshSoon(EVENT_DELAY_MS);
}

// Server-sent events from a fetch body: blocks end with a blank line, `id:`
// is the cursor, `data:` the event JSON, and `:` lines keep the line alive.
async function readEvents(body, alive) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    alive();
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id = null;
      let data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('id:')) id = line.slice(3).trim();
        else if (line.startsWith('data:')) data += line.slice(5).trim();
      }
      if (!data) continue;
      if (id !== null) feed.cursor = id;
      try {
        onFeedEvent(JSON.parse(data));
      } catch (e) {
        // Not an event this console understands: the next refresh shows the truth anyway.
      }
    }
  }
}

async function followFeed() {
  for (;;) {
    try {
      // While the token form is up, wait for it (wakeFeed) rather than ask again.
      if (!document.getElementById('token-view').hidden) throw new NeedToken('the API needs a token');
      if (feed.cursor === null) feed.cursor = (await api('GET', '/v1/stats')).last_cursor;
      const headers = { Accept: 'text/event-stream' };
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token) headers.Authorization = 'Bearer ' + token;
      // A stream that goes silent (a proxy holding it, a network gone) is cut and opened again.
      const abort = new AbortController();
      let silence = null;
      const alive = () => {
        clearTimeout(silence);
        silence = setTimeout(() => abort.abort(), FEED_SILENCE_MS);
      };
      alive();
      try {
        const res = await fetch('/v1/events/stream?after=' + encodeURIComponent(feed.cursor),
          { headers, cache: 'no-store', credentials: 'omit', signal: abort.signal });
        if (res.ok && res.body) {
          feedState(true);
          feed.retryMs = 1000;
          await readEvents(res.body, alive);
        }
      } finally {
        clearTimeout(silence);
      }
    } catch (e) {
      // A refused token brings up the form (api() did); anything else: try again below.
    }
    feedState(false);
    await new Promise((resolve) => {
      feed.wake = resolve;
      setTimeout(resolve, feed.retryMs);
    });
    feed.wake = null;
    feed.retryMs = Math.min(feed.retryMs * 2, 30000);
  }
}

// ---- the sagas list ---------------------------------------------------------------

const rateSamples = [];  // reads of GET /v1/stats: {t, sagas, total}

// <input type="datetime-local"> holds local time without a zone; the API
// wants RFC 3339, so it is converted (and back, for the form).
function toRfc3339(local) {
  const d = new Date(local);
  return isNaN(d) ? '' : d.toISOString();
}

// withMs: seconds and milliseconds too, for "as it stood at" (a saga's
// steps often lie milliseconds apart).
function toLocalInput(rfc3339, withMs = false) {
  const d = new Date(rfc3339);
  if (isNaN(d)) return '';
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const minutes = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return withMs ? `${minutes}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}` : minutes;
}

function listPage(root, params) {
  let stopped = false;
  const counts = el('ul', { className: 'counts', id: 'counts' });
  const rates = el('p', { className: 'rates', id: 'rates' });
  const workflowSelect = el('select', { name: 'workflow', id: 'filter-workflow' }, el('option', { value: '' }, 'any'));
  const statusSelect = el('select', { name: 'status', id: 'filter-status' }, el('option', { value: '' }, 'any'),
    ...STATUSES.map((s) => el('option', { value: s }, s)));
  const after = el('input', { type: 'datetime-local', name: 'created_after', id: 'filter-created-after' });
  const before = el('input', { type: 'datetime-local', name: 'created_before', id: 'filter-created-before' });
  const search = el('input', { type: 'search', name: 'q', id: 'filter-q', size: 36,
    placeholder: 'saga id, idempotency key or correlation id' });
  statusSelect.value = params.get('status') || '';
  after.value = params.get('created_after') ? toLocalInput(params.get('created_after')) : '';
  before.value = params.get('created_before') ? toLocalInput(params.get('created_before')) : '';
  search.value = params.get('q') || '';

  const form = el('form', { className: 'filters', id: 'filters' },
    el('label', {}, 'Status', statusSelect),
    el('label', {}, 'Workflow', workflowSelect),
    el('label', {}, 'Created after', after),
    el('label', {}, 'Created before', before),
    el('label', {}, 'Find', search),
    el('button', { type: 'submit' }, 'Apply'),
    el('button', { type: 'button', onclick: () => { location.hash = '#/sagas'; } }, 'Clear'));
  const apply = () => {
    const p = new URLSearchParams();
    if (statusSelect.value) p.set('status', statusSelect.value);
    if (workflowSelect.value) p.set('workflow', workflowSelect.value);
    if (after.value) p.set('created_after', toRfc3339(after.value));
    if (before.value) p.set('created_before', toRfc3339(before.value));
    if (search.value.trim()) p.set('q', search.value.trim());
    if (params.get('limit')) p.set('limit', params.get('limit'));
    location.hash = listHash(p);  // a new filter starts at the first page
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); apply(); });
  statusSelect.addEventListener('change', apply);
  workflowSelect.addEventListener('change', apply);

  // Batch actions. The selection and the results live here, outside what a
  // poll redraws: a refresh re-checks the boxes from `selected` and leaves
  // the results alone until the user dismisses them.
  const selected = new Set();
  let shownIds = [];
  const selectAll = el('input', { type: 'checkbox', id: 'select-all', title: 'select all on this page',
    ariaLabel: 'select all on this page' });
  selectAll.addEventListener('change', () => {
    for (const id of shownIds) {
      if (selectAll.checked) selected.add(id);
      else selected.delete(id);
    }
    syncSelection();
  });
  const selectionText = el('span', { id: 'batch-count', className: 'muted' });
  const batchCancel = el('button', { type: 'button', id: 'batch-cancel', className: 'danger',
    onclick: () => confirmBatch('cancel') }, 'Cancel selected');
  const batchRetry = el('button', { type: 'button', id: 'batch-retry', onclick: () => confirmBatch('retry') },
    'Retry selected');
  const confirmPanel = el('div', { id: 'batch-confirm', className: 'confirm', hidden: true });
  const results = el('div', { id: 'batch-results', hidden: true });
  const batchBar = el('div', { className: 'actions batch', id: 'batch' }, selectionText, batchCancel, batchRetry);

  const tbody = el('tbody', { id: 'saga-rows' });
  const table = el('table', { id: 'sagas' },
    el('thead', {}, el('tr', {}, el('th', { className: 'pick' }, selectAll),
      ...['Saga', 'Workflow', 'Status', 'Current step', 'Created', 'Updated', 'Error'].map((h) => el('th', {}, h)))),
    tbody);
  const pager = el('div', { className: 'pager' });
  const message = el('p', { className: 'muted', id: 'list-message' });
  root.append(el('h1', {}, 'Sagas'), counts, rates, form, batchBar, confirmPanel, results, message, table, pager);

  // The buttons, the count and the header box follow the selection; a saga
  // selected on another page (before paging) stays selected and counted.
  function syncSelection() {
    for (const box of tbody.querySelectorAll('input.pick')) box.checked = selected.has(box.dataset.id);
    const onPage = shownIds.filter((id) => selected.has(id)).length;
    selectAll.checked = shownIds.length > 0 && onPage === shownIds.length;
    selectAll.indeterminate = onPage > 0 && onPage < shownIds.length;
    selectionText.textContent = selected.size ? selected.size + ' selected' : 'Select sagas to cancel or retry them';
    batchCancel.disabled = batchRetry.disabled = selected.size === 0 || !confirmPanel.hidden;
  }

  // An in-page confirmation (a window.confirm would block the page and its polling).
  function confirmBatch(action) {
    const ids = [...selected];
    if (!ids.length) return;
    const yes = el('button', { type: 'button', id: 'batch-confirm-yes', className: action === 'cancel' ? 'danger' : '',
      onclick: () => { closeConfirm(); runBatch(action, ids); } },
    (action === 'cancel' ? 'Cancel ' : 'Retry ') + ids.length + (ids.length === 1 ? ' saga' : ' sagas'));
    const no = el('button', { type: 'button', id: 'batch-confirm-no', onclick: closeConfirm }, 'Keep them as they are');
    confirmPanel.replaceChildren(
      el('p', { id: 'batch-confirm-text' }, `${action === 'cancel' ? 'Cancel' : 'Retry'} ${ids.length} ` +
        `selected saga${ids.length === 1 ? '' : 's'}? Each is sent its own POST /v1/sagas/{id}/${action}; ` +
        'the API refuses (409) those not in a state for it.'),
      el('div', { className: 'actions' }, yes, no));
    confirmPanel.hidden = false;
    syncSelection();
    yes.focus();
  }

  function closeConfirm() {
    confirmPanel.hidden = true;
    confirmPanel.replaceChildren();
    syncSelection();
  }

  // One call per saga, one after the other (a batch of hundreds must not
  // open hundreds of connections at once); each answer is listed as it comes.
  async function runBatch(action, ids) {
    const list = el('ul', { className: 'batch-list' });
    const heading = el('p', { id: 'batch-heading' }, `${action} of ${ids.length} saga(s): running…`);
    results.replaceChildren(heading, list);
    results.hidden = false;
    let ok = 0;
    for (const id of ids) {
      const link = el('a', { href: '#/sagas/' + encodeURIComponent(id), className: 'mono' }, id);
      try {
        await api('POST', '/v1/sagas/' + encodeURIComponent(id) + '/' + action, {});
        ok += 1;
        list.append(el('li', { className: 'ok', dataset: { id, outcome: 'ok' } }, link, ' — 202 ' + action + ' accepted'));
      } catch (e) {
        if (e instanceof NeedToken) {
          list.append(el('li', { className: 'error', dataset: { id, outcome: 'refused' } }, link, ' — not sent: the API needs a token'));
          break;
        }
        // The API's problem detail as it gave it: it says why this saga was refused.
        const status = e instanceof ApiError ? e.status + ' ' : '';
        list.append(el('li', { className: 'error', dataset: { id, outcome: 'refused' } }, link, ' — ' + status + e.message));
      }
    }
    heading.replaceChildren(`${action} of ${ids.length} saga(s): ${ok} accepted, ${ids.length - ok} refused `,
      el('button', { type: 'button', id: 'batch-dismiss', onclick: () => { results.hidden = true; results.replaceChildren(); } },
        'Dismiss'));
    // Acted on: the selection is spent, the results stay.
    selected.clear();
    syncSelection();
    if (!stopped) refreshSoon(0);
  }

  // The workflows for the filter, once.
  api('GET', '/v1/workflows').then((data) => {
    for (const w of data.workflows) workflowSelect.append(el('option', { value: w.name }, w.name));
    workflowSelect.value = params.get('workflow') || '';
  }).catch(() => {});

  // Rates by status: how many sagas reached it per minute, from the counts'
  // growth between reads of GET /v1/stats (kept across pages, in rateSamples).
  function drawRates(stats) {
    const now = Date.now();
    rateSamples.push({ t: now, sagas: stats.sagas || {}, total: stats.total || 0 });
    // The baseline is the newest read at least RATE_WINDOW_MS old, once there is one.
    while (rateSamples.length > 2 && rateSamples[1].t <= now - RATE_WINDOW_MS) rateSamples.shift();
    const first = rateSamples[0];
    const last = rateSamples[rateSamples.length - 1];
    const span = last.t - first.t;
    if (span < 5000) {
      rates.replaceChildren(el('span', { className: 'muted' }, 'Rates per minute: measuring…'));
      return;
    }
    const perMinute = (a, b) => Math.max(0, Math.round(((b - a) * 60000) / span * 10) / 10);
    const items = [['started', perMinute(first.total, last.total)]];
    for (const st of ['completed', 'compensated', 'stuck', 'terminated']) {
      items.push([st, perMinute(first.sagas[st] ?? 0, last.sagas[st] ?? 0)]);
    }
    rates.replaceChildren(el('span', { className: 'muted' }, `Per minute, over the last ${Math.round(span / 1000)} s: `),
      ...items.map(([name, n]) => el('span', { className: 'rate', dataset: { status: name } }, name + ' ' + n)));
  }

  function drawCounts(stats) {
    const items = [el('li', {}, el('a', { href: listHash(new URLSearchParams()),
      className: params.get('status') ? '' : 'active' }, 'all ' + text(stats.total)))];
    for (const s of STATUSES) {
      const p = new URLSearchParams(params);
      p.set('status', s);
      p.delete('after');
      items.push(el('li', {}, el('a', { href: listHash(p), className: params.get('status') === s ? 'active' : '',
        dataset: { status: s } }, s + ' ' + text(stats.sagas[s] ?? 0))));
    }
    counts.replaceChildren(...items);
  }

  function drawRows(sagas) {
    shownIds = sagas.map((s) => s.id);
    tbody.replaceChildren(...sagas.map((s) => {
      const box = el('input', { type: 'checkbox', className: 'pick', dataset: { id: s.id },
        ariaLabel: 'select saga ' + s.id });
      box.addEventListener('change', () => {
        if (box.checked) selected.add(s.id);
        else selected.delete(s.id);
        syncSelection();
      });
      // The box's cell is not a link to the saga: a click there selects only.
      const pick = el('td', { className: 'pick', onclick: (e) => e.stopPropagation() }, box);
      const row = el('tr', { className: 'saga-row', dataset: { id: s.id },
        onclick: () => { location.hash = '#/sagas/' + encodeURIComponent(s.id); } },
        pick,
        el('td', { className: 'mono' }, el('a', { href: '#/sagas/' + encodeURIComponent(s.id) }, s.id)),
        el('td', {}, text(s.workflow) + ' v' + text(s.version)),
        el('td', {}, badge(s.status)),
        el('td', {}, text(s.current_step)),
        el('td', { className: 'time' }, text(s.created_at)),
        el('td', { className: 'time' }, text(s.updated_at)),
        el('td', {}, text(s.error)));
      return row;
    }));
    message.textContent = sagas.length ? '' : 'No saga matches.';
    syncSelection();
  }

  function drawPager(next) {
    const items = [];
    if (params.get('after')) {
      const first = new URLSearchParams(params);
      first.delete('after');
      items.push(el('a', { href: listHash(first), id: 'first-page' }, '« first page'));
    }
    if (next) {
      const p = new URLSearchParams(params);
      p.set('after', next);
      items.push(el('a', { href: listHash(p), id: 'next-page' }, 'next page »'));
    }
    pager.replaceChildren(...items);
  }

  // A search finds a saga by id, or the sagas with that idempotency key or
  // correlation id: the three lookups the API has, merged.
  // Saga ids are UUIDs: other text is not looked up as one (it would only 404).
  async function find(q, filters) {
    const found = new Map();
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(q)) {
      try {
        const s = await api('GET', '/v1/sagas/' + encodeURIComponent(q));
        found.set(s.id, s);
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 404) throw e;
      }
    }
    for (const key of ['idempotency_key', 'correlation_id']) {
      const p = new URLSearchParams(filters);
      p.set(key, q);
      const page = await api('GET', '/v1/sagas?' + p.toString());
      for (const s of page.sagas) found.set(s.id, s);
    }
    return [...found.values()];
  }

  syncSelection();
  const page = {
    stop() { stopped = true; },
    async refresh() {
      const filters = new URLSearchParams();
      for (const k of ['status', 'workflow', 'created_after', 'created_before', 'limit']) {
        if (params.get(k)) filters.set(k, params.get(k));
      }
      const stats = await api('GET', '/v1/stats');
      if (stopped) return;
      drawCounts(stats);
      drawRates(stats);
      const q = params.get('q');
      if (q) {
        const sagas = await find(q, filters);
        if (stopped) return;
        drawRows(sagas);
        drawPager(null);
        return;
      }
      const p = new URLSearchParams(filters);
      if (params.get('after')) p.set('after', params.get('after'));
      const found = await api('GET', '/v1/sagas' + (p.toString() ? '?' + p.toString() : ''));
      if (stopped) return;
      drawRows(found.sagas);
      drawPager(found.next);
    },
  };
  return page;
}

// ---- the timeline -------------------------------------------------------------------
//
// Drawn from the saga's events, to scale on one time axis from its first
// event to its last (to now while it runs, to the chosen time in a past view).
// Rows: each step's action in workflow order, then each compensation in the
// order it ran (which is reverse step order), so the undo reads as a staircase
// going back up the steps, later in time and lower on the page.
// SVG elements are made with createElementNS; data reaches them as text
// (textContent of <text> and <title>) or as numbers in attributes only.

const SVG_NS = 'http://www.w3.org/2000/svg';
const TL = { width: 1100, label: 190, right: 70, axis: 30, row: 26, bar: 14, section: 22 };
const OUTCOME_LABEL = {
  ok: 'ok', failed: 'business failure', transient: 'transient failure',
  timeout: 'timed out / unknown', running: 'in flight',
};

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  appendAll(node, children);
  return node;
}

// "850 ms", "2.4 s", "3 m 05 s": the unit that keeps the number short.
function formatDuration(ms) {
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1).replace(/\.?0+$/, '') + ' s';
  const m = Math.floor(ms / 60000);
  const h = Math.floor(m / 60);
  const s = String(Math.floor((ms % 60000) / 1000)).padStart(2, '0');
  return h ? `${h} h ${String(m % 60).padStart(2, '0')} m` : `${m} m ${s} s`;
}

// An axis step giving at most about eight ticks, from steps a clock reads
// well (never under 1 ms, the events' precision).
const TICK_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3,
  60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 21600e3, 43200e3, 86400e3];
function tickStep(span) {
  const raw = span / 8;
  return TICK_STEPS.find((step) => step >= raw) || Math.ceil(raw / 86400e3) * 86400e3;
}

// The events folded into rows of attempts. `end` (ms) closes whatever is
// still in flight. Unknown event types are skipped: the log may grow new ones.
function buildTimeline(events, stepNames, end) {
  const rows = new Map();
  const markers = [];
  let compensationStart = null;
  const newRow = (step, kind) => ({ step, kind, attempts: [], waits: [], first: null, stuck: false });
  const rowOf = (step, kind) => {
    const key = kind + '\u0000' + step;
    if (!rows.has(key)) rows.set(key, newRow(step, kind));
    return rows.get(key);
  };
  const open = (row) => row.attempts.findLast((a) => a.end === null);
  // An attempt begun at t by event e, in flight until its outcome.
  const begin = (row, d, t, e) => {
    const a = { attempt: d.attempt, start: t, end: null, outcome: 'running', error: null, seq: e.seq };
    row.attempts.push(a);
    if (row.first === null) row.first = e.seq;
    return a;
  };
  for (const e of events) {
    const t = Date.parse(e.occurred_at);
    const d = e.data && typeof e.data === 'object' ? e.data : {};
    const kind = d.kind === 'compensate' ? 'compensate' : 'action';
    if (e.type === 'CompensationStarted') compensationStart = t;
    if (e.step === null || e.step === undefined) continue;
    const row = rowOf(String(e.step), kind);
    if (e.type === 'StepScheduled') {
      const prev = row.attempts[row.attempts.length - 1];
      // The wait before a retry: from the previous outcome to this attempt;
      // after SagaStuck it was a wait for an operator, not a backoff.
      if (prev && prev.end !== null) row.waits.push({ from: prev.end, to: t, pending: false, stuck: row.stuck });
      row.stuck = false;
      row.waits = row.waits.filter((w) => !w.pending);
      begin(row, d, t, e);
    } else if (e.type === 'StepSucceeded' || e.type === 'StepFailed') {
      // An outcome with no attempt sent (e.g. "sent": false) is drawn as an instant.
      const a = open(row) || begin(row, d, t, e);
      a.end = t;
      // Only the outcomes the engine writes become a class name; anything else reads as a failure.
      a.outcome = e.type === 'StepSucceeded' ? 'ok'
        : (['failed', 'transient', 'timeout'].includes(d.outcome) ? d.outcome : 'failed');
      if (typeof d.error === 'string') a.error = d.error;
    } else if (e.type === 'RetryScheduled') {
      // Drawn until the retry is due; replaced by the real wait once it is sent.
      const due = typeof d.at === 'number' ? d.at / 1000 : t;
      row.waits.push({ from: t, to: Math.max(t, due), pending: true });
    } else if (['SagaStuck', 'OperatorRetried', 'OperatorResolved'].includes(e.type)) {
      markers.push({ row, t, type: e.type, note: d.error || d.note || d.outcome || '' });
      if (e.type === 'SagaStuck') row.stuck = true;
    }
  }
  for (const row of rows.values()) {
    for (const a of row.attempts) if (a.end === null) a.end = end;
    for (const w of row.waits) if (w.pending) w.to = Math.min(w.to, end);
  }
  // Every step has its row, drawn empty while it has not run: where the saga stopped shows.
  const actions = stepNames.map((name) => rows.get('action\u0000' + name) || newRow(name, 'action'));
  const compensations = [...rows.values()].filter((r) => r.kind === 'compensate').sort((a, b) => a.first - b.first);
  return { actions, compensations, markers, compensationStart };
}

function drawTimeline(container, saga, events, end) {
  if (!events.length) {
    container.replaceChildren(el('p', { className: 'muted' }, 'No events yet.'));
    return;
  }
  const start = Date.parse(events[0].occurred_at);
  const span = Math.max(end - start, 1);
  const chart = TL.width - TL.label - TL.right;
  const x = (t) => TL.label + ((t - start) / span) * chart;
  const types = new Map(saga.steps.map((s) => [s.name, s]));
  const tl = buildTimeline(events, saga.steps.map((s) => s.name), end);
  const rowCount = tl.actions.length + tl.compensations.length;
  const height = TL.axis + rowCount * TL.row + (tl.compensations.length ? TL.section : 0) + 8;
  const root = svg('svg', { id: 'timeline-svg', class: 'timeline', viewBox: `0 0 ${TL.width} ${height}`,
    role: 'img', 'aria-label': 'timeline of the saga, to scale' });

  root.append(drawAxis(start, span, x, height));
  const rowY = new Map();
  let y = TL.axis;
  for (const row of tl.actions) {
    root.append(drawRow(row, y, x, types.get(row.step), start));
    rowY.set(row, y);
    y += TL.row;
  }
  if (tl.compensations.length) {
    root.append(svg('text', { class: 'tl-section', x: 8, y: y + 15 }, 'compensations, in the order they ran'));
    y += TL.section;
    for (const row of tl.compensations) {
      root.append(drawRow(row, y, x, types.get(row.step), start));
      rowY.set(row, y);
      y += TL.row;
    }
  }
  if (tl.compensationStart !== null) {
    const cx = x(tl.compensationStart);
    root.append(svg('line', { class: 'tl-comp-start', x1: cx, x2: cx, y1: TL.axis - 6, y2: height - 4 },
      svg('title', {}, 'compensation started at +' + formatDuration(tl.compensationStart - start))));
  }
  for (const m of tl.markers) if (rowY.has(m.row)) root.append(drawMarker(m, x(m.t), rowY.get(m.row), start));
  container.replaceChildren(root, legend(start, end));
}

function drawAxis(start, span, x, height) {
  const g = svg('g', { class: 'tl-axis' });
  const step = tickStep(span);
  for (let t = 0; t <= span + 1e-9; t += step) {
    const tx = x(start + t);
    g.append(svg('line', { class: 'tl-grid', x1: tx, x2: tx, y1: TL.axis - 8, y2: height - 4 }),
      svg('text', { class: 'tl-tick', x: tx, y: TL.axis - 12 }, formatDuration(t)));
  }
  return g;
}

// One row: its label, a background band, each attempt as a bar with its
// duration, and the retry waits between attempts as a thin line.
function drawRow(row, y, x, step, start) {
  const undo = row.kind === 'compensate';
  const g = svg('g', { class: 'tl-row' + (undo ? ' tl-undo' : ''), 'data-step': row.step, 'data-kind': row.kind });
  g.append(svg('rect', { class: 'tl-band', x: 0, y, width: TL.width, height: TL.row }));
  // A long name is cut to fit the label column; its <title> holds it whole.
  const name = (undo ? '↩ undo ' : '') + row.step;
  const shown = name.length > 24 ? name.slice(0, 23) + '…' : name;
  g.append(svg('text', { class: 'tl-label' + (row.attempts.length ? '' : ' tl-idle'), x: 8, y: y + 17 },
    shown, svg('title', {}, name)));
  if (!undo && step && step.type === 'pivot') {
    // The pivot: past it the saga no longer compensates (docs/semantics.md).
    const px = TL.label - 14;
    const cy = y + TL.row / 2;
    g.append(svg('path', { class: 'tl-pivot', d: `M${px} ${cy - 6} L${px + 6} ${cy} L${px} ${cy + 6} L${px - 6} ${cy} Z` },
      svg('title', {}, 'pivot: once it succeeds the saga goes forward only')));
  }
  const by = y + (TL.row - TL.bar) / 2;
  for (const w of row.waits) {
    g.append(svg('line', { class: 'tl-wait' + (w.stuck ? ' tl-stuck-wait' : ''), x1: x(w.from), x2: x(w.to),
      y1: y + TL.row / 2, y2: y + TL.row / 2 },
    svg('title', {}, (w.stuck ? 'stuck, waiting for an operator ' : 'retry wait ') + formatDuration(w.to - w.from))));
  }
  for (const [i, a] of row.attempts.entries()) {
    const x0 = x(a.start);
    const width = Math.max(x(a.end) - x0, 2);  // an instant still shows
    const took = formatDuration(a.end - a.start);
    const tip = `${row.step} · ${undo ? 'compensation' : 'action'} attempt ${text(a.attempt)} · ` +
      `${OUTCOME_LABEL[a.outcome]} · ${took}` + (a.error ? '\n' + a.error : '');
    g.append(svg('rect', { class: 'tl-bar o-' + a.outcome, x: x0, y: by, width, height: TL.bar, rx: 2,
      'data-attempt': text(a.attempt), 'data-seq': a.seq, 'data-outcome': a.outcome,
      // Its true span in ms from the saga's start: the drawn width is at least 2 px.
      'data-from-ms': a.start - start, 'data-to-ms': a.end - start }, svg('title', {}, tip)));
    // The duration as a label where it fits before the next bar; the tooltip has it always.
    const next = row.attempts[i + 1];
    const labelEnd = x0 + width + 4 + took.length * 6.5;
    if (!next || labelEnd < x(next.start)) {
      g.append(svg('text', { class: 'tl-dur', x: x0 + width + 4, y: by + TL.bar - 3 }, took));
    }
  }
  return g;
}

// A saga-level moment on the row it concerns: stuck, or an operator's action.
function drawMarker(m, mx, y, start) {
  const names = { SagaStuck: 'stuck', OperatorRetried: 'retried', OperatorResolved: 'resolved' };
  return svg('g', { class: 'tl-marker m-' + m.type, 'data-step': m.row.step },
    svg('line', { x1: mx, x2: mx, y1: y + 1, y2: y + TL.row - 1 }),
    svg('text', { x: mx + 3, y: y + 9 }, names[m.type]),
    svg('title', {}, `${names[m.type]} at +${formatDuration(m.t - start)}` + (m.note ? ': ' + m.note : '')));
}

// What the colours mean, and the span drawn.
function legend(start, end) {
  const item = (cls, label) => el('li', {}, el('span', { className: 'sw ' + cls }), label);
  return el('ul', { className: 'tl-legend', id: 'timeline-legend' },
    item('o-ok', 'ok'), item('o-failed', 'business failure'), item('o-transient', 'transient'),
    item('o-timeout', 'timed out / unknown'), item('o-running', 'in flight'), item('sw-wait', 'retry wait'),
    item('sw-stuck', 'stuck, waiting for an operator'),
    item('sw-pivot', 'pivot'),
    el('li', { className: 'muted' }, `${formatDuration(end - start)} from the first event to ` +
      new Date(end).toISOString()));
}

// ---- one saga ---------------------------------------------------------------------

// `params.at` (RFC 3339) shows the saga as it stood then: the API folds its
// events up to that moment (?at=), the timeline and the log stop there, and
// the actions, which act on the saga as it is now, are disabled.
function sagaPage(root, id, params) {
  let stopped = false;
  const at = params.get('at') || '';
  const atMs = at ? Date.parse(at) : NaN;
  const sagaHash = '#/sagas/' + encodeURIComponent(id);
  const notice = el('div', { id: 'action-result' });
  const summary = el('div', { id: 'saga-summary' });
  const timeline = el('div', { id: 'timeline', className: 'timeline-box' });
  const steps = el('tbody', { id: 'step-rows' });
  const input = el('div', { id: 'saga-input' });
  const events = el('tbody', { id: 'event-rows' });
  const openRequests = new Set();  // "step:action|compensate" of the requests the user opened

  // A call's request (the API's `request`), folded: its target in the summary,
  // its idempotency key and body inside. It stays open through a refresh.
  function requestDetails(req, key) {
    if (!req) return null;
    const target = req.method ? req.method + ' ' + text(req.url)
      : req.topic !== undefined ? 'Kafka topic ' + text(req.topic) : 'local ' + text(req.operation);
    return rememberOpen(el('details', { className: 'request', dataset: { request: key } },
      el('summary', {}, 'request ', el('span', { className: 'mono' }, target)),
      el('div', { className: 'mono muted' }, 'Idempotency-Key: ' + text(req.idempotency_key)),
      jsonBlock(req.body)), openRequests, key);
  }

  async function act(action) {
    notice.replaceChildren();
    try {
      await api('POST', '/v1/sagas/' + encodeURIComponent(id) + '/' + action, {});
      notice.replaceChildren(el('p', { className: 'notice ok' }, action + ' accepted'));
      refreshSoon(0);
    } catch (e) {
      if (e instanceof NeedToken) return;
      // A 409 says why the saga is not in a state for this action: shown as is.
      notice.replaceChildren(el('p', { className: 'notice', id: 'action-error' }, action + ' refused: ' + e.message));
    }
  }

  // The time input is filled once, here: a poll never overwrites what is being typed.
  const atInput = el('input', { type: 'datetime-local', id: 'at-input', step: '0.001',
    value: at ? toLocalInput(at, true) : '' });
  const atForm = el('form', { id: 'at-form', className: 'filters' },
    el('label', {}, 'As it stood at (your local time)', atInput),
    el('button', { type: 'submit' }, 'Show'),
    at ? el('a', { href: sagaHash, id: 'at-now' }, 'back to now') : null);
  atForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const when = atInput.value ? toRfc3339(atInput.value) : '';
    location.hash = sagaHash + (when ? '?at=' + encodeURIComponent(when) : '');
  });
  const past = at
    ? el('p', { className: 'notice past', id: 'past-view' }, 'Past view: this is the saga as it stood at ' + at +
      ' (' + new Date(atMs).toLocaleString() + '), not as it is now. ',
    el('a', { href: sagaHash }, 'Back to now'))
    : null;
  const cancel = el('button', { type: 'button', id: 'cancel', className: 'danger', onclick: () => act('cancel') }, 'Cancel');
  const retry = el('button', { type: 'button', id: 'retry', onclick: () => act('retry') }, 'Retry');
  if (at) {
    for (const b of [cancel, retry]) {
      b.disabled = true;
      b.title = 'actions apply to the saga as it is now: go back to now first';
    }
  }

  root.append(
    el('p', {}, el('a', { href: '#/sagas', id: 'back' }, '« all sagas')),
    el('h1', {}, 'Saga ', el('span', { className: 'mono' }, id)),
    ...(past ? [past] : []),
    atForm,
    summary,
    el('div', { className: 'actions' }, cancel, retry),
    notice,
    el('h2', {}, 'Timeline'),
    timeline,
    el('h2', {}, 'Steps'),
    el('table', { id: 'steps' },
      el('thead', {}, el('tr', {}, ...['Step', 'Type', 'Status', 'Attempts', 'Output', 'Error', 'Compensation']
        .map((h) => el('th', {}, h)))),
      steps),
    el('h2', {}, 'Input'),
    input,
    el('h2', {}, 'Event log'),
    el('table', { id: 'events' },
      el('thead', {}, el('tr', {}, ...['Seq', 'Time', 'Type', 'Step', 'Data'].map((h) => el('th', {}, h)))),
      events));

  function drawSaga(s) {
    const facts = [
      ['Status', badge(s.status)], ['Workflow', text(s.workflow) + ' v' + text(s.version)],
      ['Created', text(s.created_at)], ['Updated', text(s.updated_at)],
      ['Current step', text(s.current_step)], ['Error', text(s.error)],
      ['Idempotency key', text(s.idempotency_key)], ['Correlation id', text(s.correlation_id)],
      ['Deadline', text(s.deadline)],
    ];
    summary.replaceChildren(el('dl', { className: 'facts' },
      ...facts.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])));
    steps.replaceChildren(...s.steps.map((st) => {
      const c = st.compensation;
      const comp = c
        ? el('div', {}, el('span', { className: 'mono' }, text(c.call)), ' ', badge(c.status),
          ' ' + text(c.attempts) + ' attempt(s)', c.error ? el('div', { className: 'error' }, String(c.error)) : null,
          requestDetails(c.request, st.name + ':compensate'))
        : el('span', { className: 'muted' }, '—');
      return el('tr', { dataset: { step: st.name } },
        el('td', {}, el('strong', {}, st.name), el('div', { className: 'muted mono' }, text(st.call)),
          requestDetails(st.request, st.name + ':action')),
        el('td', {}, text(st.type)),
        el('td', {}, badge(st.status)),
        el('td', {}, text(st.attempts)),
        el('td', {}, jsonBlock(st.output)),
        el('td', { className: 'error' }, st.error === null ? '' : String(st.error)),
        el('td', { className: 'comp' }, comp));
    }));
    input.replaceChildren(jsonBlock(s.input));
  }

  function drawEvents(list) {
    events.replaceChildren(...list.map((e) => el('tr', {},
      el('td', {}, text(e.seq)), el('td', { className: 'time' }, text(e.occurred_at)), el('td', {}, text(e.type)),
      el('td', {}, text(e.step)), el('td', {}, jsonBlock(e.data)))));
  }

  // Where the time axis ends: a saga that has stopped moving ends at its last
  // event; one still running (then, or now) runs on to that moment.
  function axisEnd(s, list) {
    const last = list.length ? Date.parse(list[list.length - 1].occurred_at) : Date.now();
    if (!['running', 'compensating'].includes(s.status)) return last;
    return Math.max(last, at ? atMs : Date.now());
  }

  // A saga that had not started at the chosen time: the API answers 404.
  function drawNotYet() {
    summary.replaceChildren(el('p', { className: 'muted', id: 'not-yet' }, 'This saga had not started at that time.'));
    timeline.replaceChildren();
    steps.replaceChildren();
    input.replaceChildren();
    events.replaceChildren();
  }

  const page = {
    stop() { stopped = true; },
    // A past view never changes; the present one does with each of its events.
    wants(event) { return !at && event.saga_id === id; },
    async refresh() {
      const path = '/v1/sagas/' + encodeURIComponent(id);
      let saga;
      let log;
      try {
        [saga, log] = await Promise.all([api('GET', path + (at ? '?at=' + encodeURIComponent(at) : '')),
          api('GET', path + '/events')]);
      } catch (e) {
        if (at && e instanceof ApiError && e.status === 404) {
          if (!stopped) drawNotYet();
          return;
        }
        throw e;
      }
      if (stopped) return;
      // The API includes the whole millisecond of `at`, and so does this.
      const list = at ? log.events.filter((e) => Date.parse(e.occurred_at) <= atMs) : log.events;
      drawSaga(saga);
      drawTimeline(timeline, saga, list, axisEnd(saga, list));
      drawEvents(list);
    },
  };
  return page;
}

// ---- the workflows ------------------------------------------------------------------
//
// Each loaded definition from GET /v1/workflows, drawn as its steps in order:
// a box per step with its call, its compensation under it, the pivot marked,
// and the steps after the pivot grouped as the retriable tail (past the pivot
// the saga only goes forward: docs/semantics.md). Under it, its versions: the
// one loaded and those unfinished sagas are still pinned to; and its YAML
// source, read from GET /v1/workflows/{name} when first opened.

function workflowsPage(root) {
  let stopped = false;
  let drawn = '';
  const sources = new Map();     // hash → YAML text, once read
  const openSources = new Set(); // names whose source the user opened
  const list = el('div', { id: 'workflows' });
  root.append(el('h1', {}, 'Workflows'),
    el('p', { className: 'muted' }, 'The definitions this server has loaded, as it runs them: steps left to right, ' +
      'each one\'s compensation under it.'),
    el('ul', { className: 'tl-legend wf-legend' },
      el('li', {}, el('span', { className: 'sw sw-pivot' }), 'pivot: once it succeeds the saga goes forward only'),
      el('li', {}, el('span', { className: 'sw wf-sw-tail' }), 'retriable tail: retried until done, never undone'),
      el('li', {}, el('span', { className: 'sw wf-sw-comp' }), 'compensation: runs, in reverse, if a later step fails')),
    list);

  function stepBox(step, pivot) {
    const isPivot = step.type === 'pivot' || step.name === pivot;
    const box = el('div', { className: 'wf-step' + (isPivot ? ' wf-pivot' : '') +
      (step.type === 'retriable' ? ' wf-retriable' : ''), dataset: { step: String(step.name), type: String(step.type) } },
    el('div', { className: 'wf-name' }, text(step.name)),
    el('div', { className: 'mono muted' }, text(step.call)),
    el('div', { className: 'wf-type' }, isPivot ? '◆ pivot' : text(step.type)));
    const comp = step.compensate
      ? el('div', { className: 'wf-comp' }, '↩ ', el('span', { className: 'mono' }, String(step.compensate)))
      : el('div', { className: 'wf-comp wf-none muted' }, 'no compensation');
    return el('div', { className: 'wf-col', dataset: { step: String(step.name) } }, box, comp);
  }

  function drawWorkflow(w) {
    const steps = Array.isArray(w.steps) ? w.steps : [];
    const p = steps.findIndex((s) => s.name === w.pivot);
    const row = el('div', { className: 'wf-steps' });
    // Before the tail: the steps up to and including the pivot (all of them when there is none).
    const head = p < 0 ? steps : steps.slice(0, p + 1);
    head.forEach((s, i) => {
      if (i) row.append(el('span', { className: 'wf-arrow' }, '→'));
      row.append(stepBox(s, w.pivot));
    });
    if (p >= 0 && p + 1 < steps.length) {
      const tail = el('div', { className: 'wf-tail' });
      steps.slice(p + 1).forEach((s, i) => {
        if (i) tail.append(el('span', { className: 'wf-arrow' }, '→'));
        tail.append(stepBox(s, w.pivot));
      });
      // The arrow into the tail wraps with it: a row never ends on a dangling arrow.
      row.append(el('div', { className: 'wf-tail-wrap' }, el('span', { className: 'wf-arrow' }, '→'),
        el('div', { className: 'wf-tail-box' }, el('div', { className: 'wf-tail-label' }, 'retriable tail'), tail)));
    }
    const redact = Array.isArray(w.redact) && w.redact.length ? w.redact.map(String).join(', ') : 'nothing';
    const versions = Array.isArray(w.versions) ? w.versions : [];
    const sagasOf = listHash(new URLSearchParams({ workflow: String(w.name) }));
    const versionRows = versions.map((v) => el('tr', { className: v.loaded ? 'wf-loaded' : 'wf-pinned',
      dataset: { version: text(v.version) } },
    el('td', {}, 'v' + text(v.version)),
    el('td', {}, v.loaded ? 'loaded: new sagas start on it' : 'pinned: no longer loaded; its sagas finish on it'),
    el('td', {}, el('a', { href: sagasOf }, text(v.unfinished))),
    el('td', { className: 'mono' }, text(v.hash))));
    return el('section', { className: 'workflow panel', dataset: { name: String(w.name) } },
      el('h2', {}, text(w.name), ' ', el('span', { className: 'muted' }, 'v' + text(w.version))),
      el('p', {}, text(w.description)),
      el('p', {}, el('a', { href: listHash(new URLSearchParams({ workflow: String(w.name) })), className: 'wf-sagas' },
        'its sagas »')),
      row,
      el('dl', { className: 'facts' },
        el('dt', {}, 'Pivot'), el('dd', {}, w.pivot === null || w.pivot === undefined ? 'none' : String(w.pivot)),
        el('dt', {}, 'Redacted'), el('dd', { className: 'mono' }, redact),
        el('dt', {}, 'File SHA-256'), el('dd', { className: 'mono' }, text(w.hash))),
      el('h3', {}, 'Versions'),
      el('table', { className: 'wf-versions' },
        el('thead', {}, el('tr', {}, ...['Version', '', 'Unfinished sagas', 'SHA-256'].map((h) => el('th', {}, h)))),
        el('tbody', {}, ...versionRows)),
      el('h3', {}, 'Input schema'),
      el('div', { className: 'wf-schema' }, w.input === null || w.input === undefined
        ? el('span', { className: 'muted' }, 'none: any JSON object is accepted') : jsonBlock(w.input)),
      sourceDetails(w));
  }

  // The loaded version's YAML, as the server read it.
  function sourceDetails(w) {
    const name = String(w.name);
    const pre = el('pre', { className: 'yaml' }, sources.get(w.hash) ?? 'reading…');
    const box = el('details', { className: 'wf-source' }, el('summary', {}, 'YAML source (v' + text(w.version) + ')'), pre);
    const load = () => {
      if (sources.has(w.hash)) return;
      api('GET', '/v1/workflows/' + encodeURIComponent(name)).then((one) => {
        sources.set(w.hash, String(one.source ?? ''));
        pre.textContent = sources.get(w.hash);
      }).catch((e) => { pre.textContent = 'not read: ' + e.message; });
    };
    rememberOpen(box, openSources, name);
    if (box.open) load();
    box.addEventListener('toggle', () => { if (box.open) load(); });
    return box;
  }

  return {
    stop() { stopped = true; },
    // Sagas starting and finishing change the versions' counts of unfinished sagas.
    wants(event) { return String(event.type).startsWith('Saga'); },
    async refresh() {
      const data = await api('GET', '/v1/workflows');
      if (stopped) return;
      // Redrawn only when something changed (a reload, a count of unfinished
      // sagas): a poll must not reset the schema's scroll or a selection of its text.
      const now = JSON.stringify(data.workflows);
      if (now === drawn) return;
      drawn = now;
      list.replaceChildren(...(data.workflows.length ? data.workflows.map(drawWorkflow)
        : [el('p', { className: 'muted' }, 'No workflow is loaded.')]));
    },
  };
}

// ---- start ----------------------------------------------------------------------

setupTokenForm();
window.addEventListener('hashchange', render);
if (!location.hash) history.replaceState(null, '', '#/sagas');
render();
followFeed();
