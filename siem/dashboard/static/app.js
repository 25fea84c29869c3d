// The analysts' dashboard. Everything that comes from the SIEM is rendered with textContent or
// attributes set through the DOM API, never parsed as HTML: event fields are attacker-written.
const $main = document.getElementById('main');
const $nav = document.getElementById('nav');
const $who = document.getElementById('who');
const $status = document.getElementById('status');
let me = null;
let feed = null;
const liveAlerts = [];

/** Builds an element: h('td', {class: 'x'}, 'text', child, ...). Strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function say(text, isError = false) {
  $status.textContent = text;
  $status.className = isError ? 'error' : 'muted';
}

async function api(path, opts = {}) {
  const headers = { accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.method && opts.method !== 'GET' && me) headers['x-csrf-token'] = me.csrf;
  const res = await fetch(path, {
    method: opts.method ?? 'GET',
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    credentials: 'same-origin',
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(`${json.code ?? res.status}: ${json.message ?? 'request failed'}`);
    err.code = json.code;
    throw err;
  }
  return json;
}

const fmtTime = (ms) =>
  typeof ms === 'number' ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : String(ms ?? '');
const text = (v) =>
  v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
const entityLink = (id) => h('a', { href: `#/entity?id=${encodeURIComponent(id)}` }, id);
const canAct = () => me && (me.role === 'analyst' || me.role === 'admin');

function table(headers, rows, label) {
  return h(
    'table',
    { 'aria-label': label },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map((x) => h('th', { scope: 'col' }, x)),
      ),
    ),
    h('tbody', {}, rows),
  );
}

// ---------- login ----------
function renderLogin(message) {
  $nav.hidden = true;
  $who.textContent = '';
  const name = h('input', { id: 'login-name', name: 'name', autocomplete: 'username', required: true });
  const password = h('input', {
    id: 'login-password',
    name: 'password',
    type: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const form = h(
    'form',
    { class: 'panel', 'aria-label': 'Log in' },
    h('h2', {}, 'Log in'),
    h('label', { for: 'login-name' }, 'User name', name),
    h('label', { for: 'login-password' }, 'Password', password),
    h('button', { type: 'submit', id: 'login-submit' }, 'Log in'),
    message ? h('p', { class: 'error', role: 'alert' }, message) : null,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      me = await api('/api/login', { method: 'POST', body: { name: name.value, password: password.value } });
      location.hash = '#/alerts';
      start();
    } catch (err) {
      renderLogin(err.message);
    }
  });
  $main.replaceChildren(form);
  name.focus();
}

// ---------- alerts ----------
function alertRow(a, isNew) {
  const sev = text(a.severity);
  const entity = text(a.entity ?? a.groupKey ?? a.key);
  const events = Array.isArray(a.events) ? a.events : Array.isArray(a.eventIds) ? a.eventIds : [];
  return h(
    'tr',
    { class: isNew ? 'new alert-row' : 'alert-row', 'data-rule': text(a.ruleId ?? a.rule) },
    h('td', {}, fmtTime(a.time ?? a.at ?? a['@timestamp'])),
    h('td', { class: `sev-${sev}` }, sev),
    h('td', {}, text(a.title ?? a.ruleId ?? a.rule)),
    h('td', {}, entity.startsWith('spiffe://') ? entityLink(entity) : entity),
    h(
      'td',
      {},
      h(
        'details',
        {},
        h('summary', {}, `${events.length} event(s)`),
        h('pre', {}, events.map((e) => text(e)).join('\n')),
      ),
    ),
  );
}

async function renderAlerts() {
  const body = h('tbody', { id: 'alert-body' });
  const { items } = await api('/api/alerts?limit=100');
  for (const a of liveAlerts) body.append(alertRow(a, true));
  for (const a of items) body.append(alertRow(a, false));
  $main.replaceChildren(
    h('h2', {}, 'Live alerts'),
    h('p', { class: 'muted' }, 'New alerts appear at the top as they are raised.'),
    h(
      'table',
      { 'aria-label': 'Alerts', 'aria-live': 'polite' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Time', 'Severity', 'Rule', 'Entity', 'Events'].map((x) => h('th', { scope: 'col' }, x)),
        ),
      ),
      body,
    ),
  );
}

function startFeed() {
  if (feed) feed.close();
  feed = new EventSource('/api/alerts/stream');
  feed.addEventListener('alert', (ev) => {
    let a;
    try {
      a = JSON.parse(ev.data);
    } catch {
      return;
    }
    liveAlerts.unshift(a);
    if (liveAlerts.length > 200) liveAlerts.pop();
    const body = document.getElementById('alert-body');
    if (body) {
      body.prepend(alertRow(a, true));
      while (body.children.length > 300) body.lastChild.remove();
    }
    say(`alert: ${text(a.ruleId ?? a.rule)} on ${text(a.entity ?? a.groupKey ?? '')}`);
  });
  feed.onerror = () => say('live feed reconnecting…');
}

// ---------- inventory ----------
async function renderInventory(params) {
  const q = params.get('q') ?? '';
  const status = params.get('status') ?? '';
  const kind = params.get('kind') ?? '';
  const offset = Number(params.get('offset') ?? 0);
  const limit = 50;
  const qs = new URLSearchParams({ q, status, kind, limit: String(limit), offset: String(offset) });
  const data = await api(`/api/inventory?${qs}`);
  const search = h('input', { id: 'inv-q', type: 'search', value: q, placeholder: 'identity, serial…' });
  const st = h(
    'select',
    { id: 'inv-status' },
    ['', 'healthy', 'quarantined', 'revoked'].map((s) =>
      h('option', { value: s, selected: s === status }, s || 'any'),
    ),
  );
  const kd = h(
    'select',
    { id: 'inv-kind' },
    ['', 'node', 'device', 'svc'].map((s) => h('option', { value: s, selected: s === kind }, s || 'any')),
  );
  const go = (off) => {
    location.hash = `#/inventory?${new URLSearchParams({ q: search.value, status: st.value, kind: kd.value, offset: String(off) })}`;
  };
  const form = h(
    'form',
    { class: 'panel', 'aria-label': 'Filter inventory' },
    h('label', { for: 'inv-q' }, 'Search', search),
    h('label', { for: 'inv-status' }, 'Status', st),
    h('label', { for: 'inv-kind' }, 'Kind', kd),
    h('button', { type: 'submit' }, 'Filter'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(0);
  });
  const rows = data.items.map((d) =>
    h(
      'tr',
      {},
      h('td', {}, entityLink(text(d.identity))),
      h('td', {}, text(d.kind)),
      h('td', {}, text(d.method)),
      h('td', {}, text(d.verdict)),
      h('td', {}, text(d.serial)),
      h('td', {}, fmtTime(d.notAfter)),
      h('td', {}, fmtTime(d.lastSeen)),
      h('td', { class: text(d.status) }, text(d.status)),
    ),
  );
  $main.replaceChildren(
    h('h2', {}, `Inventory (${data.total})`),
    form,
    table(
      ['Identity', 'Kind', 'Attestation', 'Last verdict', 'Serial', 'Expires', 'Last seen', 'Status'],
      rows,
      'Inventory',
    ),
    h(
      'button',
      { type: 'button', disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) },
      'Previous',
    ),
    ' ',
    h(
      'button',
      { type: 'button', disabled: offset + limit >= data.total, onclick: () => go(offset + limit) },
      'Next',
    ),
  );
}

// ---------- entity ----------
async function renderEntity(params) {
  const id = params.get('id') ?? '';
  const d = await api(`/api/entity?id=${encodeURIComponent(id)}`);
  const events = (d.events ?? []).map((e) =>
    h(
      'tr',
      {},
      h('td', {}, fmtTime(e['@timestamp'])),
      h('td', {}, text(e['event.action'])),
      h('td', {}, text(e['event.outcome'])),
      h('td', {}, text(e['event.reason'])),
      h('td', {}, text(e['source.ip'])),
      h('td', {}, text(e['destination.identity'])),
    ),
  );
  const alerts = (d.alerts ?? []).map((a) => alertRow(a, false));
  const decisions = (d.decisions ?? []).map((x) =>
    h(
      'tr',
      {},
      h('td', {}, text(x.id)),
      h('td', {}, text(x.action)),
      h('td', {}, text(x.reason)),
      h('td', {}, fmtTime(x.expiresAt)),
    ),
  );
  $main.replaceChildren(
    h('h2', {}, 'Entity ', h('span', { id: 'entity-id' }, id)),
    canAct()
      ? h(
          'button',
          {
            type: 'button',
            class: 'danger',
            id: 'quarantine-entity',
            onclick: () => quarantine({ type: 'identity', value: id }, 'quarantined from the entity page'),
          },
          'Quarantine this identity',
        )
      : null,
    h('h3', {}, 'Peers'),
    h(
      'p',
      {},
      (d.peers ?? []).length
        ? (d.peers ?? []).flatMap((p, i) => [i ? ', ' : '', entityLink(text(p))])
        : 'none seen',
    ),
    h('h3', {}, 'Decisions'),
    table(['Id', 'Action', 'Reason', 'Expires'], decisions, 'Decisions'),
    h('h3', {}, 'Alerts'),
    table(['Time', 'Severity', 'Rule', 'Entity', 'Events'], alerts, 'Alerts of this entity'),
    h('h3', {}, 'Timeline'),
    table(['Time', 'Action', 'Outcome', 'Reason', 'Source address', 'Peer'], events, 'Timeline'),
  );
}

async function quarantine(scope, reason) {
  try {
    const dec = await api('/api/decisions', {
      method: 'POST',
      body: { scope, action: 'quarantine', ttlSeconds: 3600, reason },
    });
    say(`quarantine decision ${text(dec.id ?? '')} ${text(dec.status ?? 'created')}`);
    location.hash = '#/decisions';
  } catch (err) {
    say(err.message, true);
  }
}

// ---------- decisions ----------
// The server sends at most a few hundred of each list (newest first, agents furthest behind first).
function shown(list, total) {
  const n = (list ?? []).length;
  return typeof total === 'number' && total > n ? ` (${n} of ${total})` : '';
}

async function renderDecisions() {
  const d = await api('/api/decisions');
  const now = Date.now();
  const act = (verb, id) => async () => {
    try {
      await api(`/api/decisions/${encodeURIComponent(id)}/${verb}`, { method: 'POST', body: {} });
      say(`${verb}: ${id}`);
      await renderDecisions();
    } catch (err) {
      say(err.message, true);
    }
  };
  const active = (d.active ?? []).map((x) =>
    h(
      'tr',
      { 'data-decision': text(x.id) },
      h('td', {}, text(x.id)),
      h('td', {}, `${text(x.scope?.type)}: ${text(x.scope?.value)}`),
      h('td', {}, text(x.action)),
      h('td', {}, `${Math.max(0, Math.round((x.expiresAt - now) / 1000))} s`),
      h('td', {}, text(x.reason)),
      h(
        'td',
        {},
        canAct() ? h('button', { type: 'button', class: 'lift', onclick: act('lift', x.id) }, 'Lift') : '',
      ),
    ),
  );
  const pending = (d.pending ?? []).map((x) =>
    h(
      'tr',
      {},
      h('td', {}, text(x.id)),
      h('td', {}, `${text(x.scope?.type)}: ${text(x.scope?.value)}`),
      h('td', {}, text(x.reason)),
      h(
        'td',
        {},
        canAct()
          ? h('button', { type: 'button', class: 'approve', onclick: act('approve', x.id) }, 'Approve')
          : '',
      ),
    ),
  );
  const agents = (d.agents ?? []).map((a) =>
    h(
      'tr',
      {},
      h('td', {}, text(a.identity)),
      h('td', {}, text(a.revision)),
      h('td', {}, text(a.behind)),
      h('td', {}, a.lagMs === undefined || a.lagMs === null ? '' : `${text(a.lagMs)} ms`),
    ),
  );
  const type = h(
    'select',
    { id: 'q-type' },
    ['identity', 'serial', 'spki', 'ip', 'cidr', 'node'].map((t) => h('option', { value: t }, t)),
  );
  const value = h('input', { id: 'q-value', required: true });
  const reason = h('input', { id: 'q-reason', required: true, value: 'manual quarantine' });
  const form = h(
    'form',
    { class: 'panel', 'aria-label': 'Manual quarantine' },
    h('label', { for: 'q-type' }, 'Scope', type),
    h('label', { for: 'q-value' }, 'Value', value),
    h('label', { for: 'q-reason' }, 'Reason', reason),
    h('button', { type: 'submit', class: 'danger', id: 'q-submit' }, 'Quarantine'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void quarantine({ type: type.value, value: value.value }, reason.value);
  });
  $main.replaceChildren(
    h('h2', {}, `Decisions (revision ${text(d.revision)})`),
    canAct() ? form : null,
    h('h3', {}, `Active${shown(d.active, d.activeTotal)}`),
    table(['Id', 'Scope', 'Action', 'TTL left', 'Reason', ''], active, 'Active decisions'),
    h('h3', {}, `Waiting for approval${shown(d.pending, d.pendingTotal)}`),
    table(['Id', 'Scope', 'Reason', ''], pending, 'Pending decisions'),
    h('h3', {}, `Agents${shown(d.agents, d.agentsTotal)}`),
    table(['Agent', 'Acknowledged revision', 'Revisions behind', 'Lag'], agents, 'Agent acknowledgements'),
  );
}

// ---------- graph and charts ----------
async function renderGraph() {
  const g = await api('/api/graph');
  const nodes = g.nodes ?? [];
  const W = 900;
  const H = 600;
  const pos = new Map(
    nodes.map((n, i) => [
      n.id,
      [
        W / 2 + (W / 2.4) * Math.cos((2 * Math.PI * i) / Math.max(1, nodes.length)),
        H / 2 + (H / 2.4) * Math.sin((2 * Math.PI * i) / Math.max(1, nodes.length)),
      ],
    ]),
  );
  const view = svg('svg', {
    viewBox: `0 0 ${W} ${H}`,
    width: '100%',
    role: 'img',
    'aria-label': `Mesh graph of ${nodes.length} entities`,
  });
  for (const e of g.edges ?? []) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    if (a && b) view.append(svg('line', { class: 'edge', x1: a[0], y1: a[1], x2: b[0], y2: b[1] }));
  }
  for (const n of nodes) {
    const [x, y] = pos.get(n.id);
    const c = svg('circle', {
      class: `node ${n.status === 'quarantined' ? 'quarantined' : ''}`,
      cx: x,
      cy: y,
      r: 7,
    });
    c.append(svg('title', {}, `${n.id} (${n.status})`));
    view.append(c, svg('text', { x: x + 9, y: y + 3 }, text(n.id).replace(/^spiffe:\/\/[^/]+\//, '')));
  }
  const list = nodes.map((n) =>
    h('li', { class: text(n.status) }, entityLink(text(n.id)), ` — ${text(n.status)}`),
  );
  $main.replaceChildren(h('h2', {}, 'Who talks to whom'), view, h('h3', {}, 'Entities'), h('ul', {}, list));
}

function bars(series, label) {
  const W = 900;
  const H = 160;
  const max = Math.max(1, ...series.map((s) => s[1]));
  const w = W / Math.max(1, series.length);
  const view = svg('svg', { viewBox: `0 0 ${W} ${H + 20}`, width: '100%', role: 'img', 'aria-label': label });
  series.forEach(([t, v], i) => {
    const bh = (v / max) * H;
    const r = svg('rect', { class: 'bar', x: i * w + 1, y: H - bh, width: Math.max(1, w - 2), height: bh });
    r.append(svg('title', {}, `${fmtTime(t)}: ${v}`));
    view.append(r);
  });
  return view;
}

async function renderCharts() {
  const c = await api('/api/charts');
  const byRule = (c.alertsByRule ?? []).map((r) => [
    h('h4', {}, text(r.rule)),
    bars(r.buckets ?? [], `alerts of ${text(r.rule)} over time`),
  ]);
  $main.replaceChildren(
    h('h2', {}, 'Events per second'),
    bars(c.eventsPerSecond ?? [], 'events per second'),
    h('h2', {}, 'Alerts by rule'),
    ...byRule.flat(),
  );
}

// ---------- routing ----------
const ROUTES = {
  alerts: renderAlerts,
  inventory: renderInventory,
  entity: renderEntity,
  decisions: renderDecisions,
  graph: renderGraph,
  charts: renderCharts,
};

async function route() {
  if (!me) return renderLogin();
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const name = ROUTES[path] ? path : 'alerts';
  for (const a of $nav.querySelectorAll('a'))
    a.classList.toggle('active', a.getAttribute('href') === `#/${name}`);
  try {
    await ROUTES[name](new URLSearchParams(query ?? ''));
    $main.focus();
  } catch (err) {
    if (err.code === 'ERR_DASH_UNAUTHENTICATED') {
      me = null;
      return renderLogin('Your session ended; log in again.');
    }
    $main.replaceChildren(h('p', { class: 'error', role: 'alert' }, err.message));
  }
}

function start() {
  $nav.hidden = false;
  const out = h('button', { type: 'button', id: 'logout' }, 'Log out');
  out.addEventListener('click', async () => {
    await api('/api/logout', { method: 'POST', body: {} }).catch(() => undefined);
    me = null;
    if (feed) feed.close();
    renderLogin();
  });
  $who.replaceChildren(`${me.user} (${me.role}) `, out);
  startFeed();
  void route();
}

window.addEventListener('hashchange', () => void route());
api('/api/me').then(
  (m) => {
    me = m;
    start();
  },
  () => renderLogin(),
);
