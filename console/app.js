// The usher console (docs/console.md): plain JavaScript over the trigger API.
//
// Rules this file keeps:
// - Every value that comes from a saga reaches the page through textContent
//   or createElement, never as HTML: an input such as <img src=x onerror=…>
//   is shown as the text it is. The page's CSP forbids inline script anyway.
// - The bearer token lives in sessionStorage only (this tab, until it closes),
//   never in a URL or localStorage, and is sent as `Authorization: Bearer`.
// - Where the user is lives in the URL hash (#/sagas?status=…&after=…,
//   #/sagas/{id}), so back and forward work and a refresh keeps the place.
// - Live updates poll every 2 s (EventSource cannot send the token); a poll
//   redraws the data only, never the filter form the user may be typing in.
'use strict';

const POLL_MS = 2000;
const TOKEN_KEY = 'usher.token';
const STATUSES = ['running', 'compensating', 'completed', 'compensated', 'stuck', 'terminated'];
// `limit` (sagas a page) has no field in the form; it is kept when given in the hash.
const LIST_PARAMS = ['status', 'workflow', 'created_after', 'created_before', 'q', 'limit', 'after'];

// ---- small DOM helpers --------------------------------------------------------

// el('td', {className: 'x'}, 'text', child…): strings become text nodes.
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
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

let view = null;  // the page shown: {refresh(), stop()}
let pollTimer = null;

function render() {
  if (view) view.stop();
  clearTimeout(pollTimer);
  const { path, params } = currentRoute();
  const root = document.getElementById('view');
  root.replaceChildren();
  const m = path.match(/^\/sagas\/(.+)$/);
  if (m) view = sagaPage(root, decodeURIComponent(m[1]));
  else view = listPage(root, params);
  poll();
}

// Refreshes the page shown, then again 2 s after that answer: never two at once.
async function poll() {
  const mine = view;
  const live = document.getElementById('live');
  try {
    await mine.refresh();
    live.classList.remove('stale');
    live.textContent = 'live · ' + new Date().toLocaleTimeString();
  } catch (e) {
    if (e instanceof NeedToken) return;  // the token form is shown; polling resumes after it
    live.classList.add('stale');
    live.textContent = 'not updated: ' + e.message;
  }
  if (view === mine) pollTimer = setTimeout(poll, POLL_MS);
}

// ---- the sagas list ---------------------------------------------------------------

// <input type="datetime-local"> holds local time without a zone; the API
// wants RFC 3339, so it is converted (and back, for the form).
function toRfc3339(local) {
  const d = new Date(local);
  return isNaN(d) ? '' : d.toISOString();
}

function toLocalInput(rfc3339) {
  const d = new Date(rfc3339);
  if (isNaN(d)) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function listPage(root, params) {
  let stopped = false;
  const counts = el('ul', { className: 'counts', id: 'counts' });
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

  const tbody = el('tbody', { id: 'saga-rows' });
  const table = el('table', { id: 'sagas' },
    el('thead', {}, el('tr', {}, ...['Saga', 'Workflow', 'Status', 'Current step', 'Created', 'Updated', 'Error']
      .map((h) => el('th', {}, h)))),
    tbody);
  const pager = el('div', { className: 'pager' });
  const message = el('p', { className: 'muted', id: 'list-message' });
  root.append(el('h1', {}, 'Sagas'), counts, form, message, table, pager);

  // The workflows for the filter, once.
  api('GET', '/v1/workflows').then((data) => {
    for (const w of data.workflows) workflowSelect.append(el('option', { value: w.name }, w.name));
    workflowSelect.value = params.get('workflow') || '';
  }).catch(() => {});

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
    tbody.replaceChildren(...sagas.map((s) => {
      const row = el('tr', { className: 'saga-row', dataset: { id: s.id },
        onclick: () => { location.hash = '#/sagas/' + encodeURIComponent(s.id); } },
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

  return {
    stop() { stopped = true; },
    async refresh() {
      const filters = new URLSearchParams();
      for (const k of ['status', 'workflow', 'created_after', 'created_before', 'limit']) {
        if (params.get(k)) filters.set(k, params.get(k));
      }
      const stats = await api('GET', '/v1/stats');
      if (stopped) return;
      drawCounts(stats);
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
      const page = await api('GET', '/v1/sagas' + (p.toString() ? '?' + p.toString() : ''));
      if (stopped) return;
      drawRows(page.sagas);
      drawPager(page.next);
    },
  };
}

// ---- one saga ---------------------------------------------------------------------

function sagaPage(root, id) {
  let stopped = false;
  const notice = el('div', { id: 'action-result' });
  const summary = el('div', { id: 'saga-summary' });
  const steps = el('tbody', { id: 'step-rows' });
  const input = el('div', { id: 'saga-input' });
  const events = el('tbody', { id: 'event-rows' });

  async function act(action) {
    notice.replaceChildren();
    try {
      await api('POST', '/v1/sagas/' + encodeURIComponent(id) + '/' + action, {});
      notice.replaceChildren(el('p', { className: 'notice ok' }, action + ' accepted'));
      await page.refresh();
    } catch (e) {
      if (e instanceof NeedToken) return;
      // A 409 says why the saga is not in a state for this action: shown as is.
      notice.replaceChildren(el('p', { className: 'notice', id: 'action-error' }, action + ' refused: ' + e.message));
    }
  }

  root.append(
    el('p', {}, el('a', { href: '#/sagas', id: 'back' }, '« all sagas')),
    el('h1', {}, 'Saga ', el('span', { className: 'mono' }, id)),
    summary,
    el('div', { className: 'actions' },
      el('button', { type: 'button', id: 'cancel', className: 'danger', onclick: () => act('cancel') }, 'Cancel'),
      el('button', { type: 'button', id: 'retry', onclick: () => act('retry') }, 'Retry')),
    notice,
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
          ' ' + text(c.attempts) + ' attempt(s)', c.error ? el('div', { className: 'error' }, String(c.error)) : null)
        : el('span', { className: 'muted' }, '—');
      return el('tr', { dataset: { step: st.name } },
        el('td', {}, el('strong', {}, st.name), el('div', { className: 'muted mono' }, text(st.call))),
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

  const page = {
    stop() { stopped = true; },
    async refresh() {
      const path = '/v1/sagas/' + encodeURIComponent(id);
      const [saga, log] = await Promise.all([api('GET', path), api('GET', path + '/events')]);
      if (stopped) return;
      drawSaga(saga);
      drawEvents(log.events);
    },
  };
  return page;
}

// ---- start ----------------------------------------------------------------------

setupTokenForm();
window.addEventListener('hashchange', render);
if (!location.hash) history.replaceState(null, '', '#/sagas');
render();
