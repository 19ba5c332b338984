// jobq's dashboard: the gateway's API (docs/HTTP.md), nothing else.
// Every string a job carries goes into the page as text (textContent),
// never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const state = { rows: new Map(), next: null, selected: null, samples: [],
                stream: null, soon: null };

function filters() {
  const q = new URLSearchParams();
  for (const [k, id] of [['shop', 'f-shop'], ['type', 'f-type'],
                         ['status', 'f-status']])
    if ($(id).value) q.set(k, $(id).value);
  return q;
}

async function api(method, path) {
  const r = await fetch(path, { method, credentials: 'same-origin' });
  if (r.status === 401) { $('login').hidden = false; throw new Error('401'); }
  const body = r.headers.get('Content-Type')?.startsWith('application/json')
    ? await r.json() : null;
  if (!r.ok) throw new Error(body?.error?.message || r.statusText);
  return body;
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text == null ? '' : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function time(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : '';
}

// One job's row, made or brought up to date (never older than shown).
function showRow(job, atTop) {
  let row = state.rows.get(job.id);
  if (row && row.version > job.version) return;
  const tr = document.createElement('tr');
  tr.dataset.id = job.id;
  cell(tr, job.id, 'id');
  cell(tr, job.type);
  cell(tr, job.shopId);
  cell(tr, job.status, 'status ' + job.status);
  const bar = document.createElement('div');
  bar.className = 'bar';
  const fill = document.createElement('i');
  fill.style.width = (job.progress || 0) + '%';
  bar.appendChild(fill);
  cell(tr, '').appendChild(bar);
  cell(tr, job.message || job.error || '');
  cell(tr, time(job.updatedAt));
  tr.addEventListener('click', () => select(job.id));
  if (row) row.tr.replaceWith(tr);
  else if (atTop) $('rows').prepend(tr);
  else $('rows').appendChild(tr);
  state.rows.set(job.id, { tr, version: job.version });
  if (state.selected === job.id) detail(job, false);
}

async function load(more) {
  const q = filters();
  q.set('limit', '50');
  if (more && state.next) q.set('cursor', state.next);
  if (!more) { $('rows').textContent = ''; state.rows.clear(); }
  const page = await api('GET', '/v1/jobs?' + q);
  for (const job of page.jobs) showRow(job, false);
  state.next = page.next;
  $('more').hidden = !page.next;
  follow();
}

// Live: the event stream of the shop filtered on (or of every shop).
function follow() {
  if (state.stream) state.stream.close();
  const shop = $('f-shop').value;
  const s = new EventSource('/v1/events' + (shop ? '?shop=' +
                            encodeURIComponent(shop) : ''));
  s.addEventListener('job', (e) => {
    const job = JSON.parse(e.data);
    const f = filters();
    if ((f.get('type') && f.get('type') !== job.type) ||
        (f.get('status') && f.get('status') !== job.status)) return;
    showRow(job, !state.rows.has(job.id));
    overviewSoon();
  });
  state.stream = s;
}

function item(ul, text) {
  const li = document.createElement('li');
  li.textContent = text;
  ul.appendChild(li);
}

function detail(job, full) {
  $('detail').hidden = false;
  $('d-title').textContent = job.type + ' ' + job.id + ' · ' + job.status;
  $('d-bar').style.width = (job.progress || 0) + '%';
  $('d-message').textContent = job.message || job.error || '';
  const ended = ['completed', 'failed', 'cancelled'].includes(job.status);
  $('d-cancel').disabled = ended;
  $('d-retry').disabled = !['failed', 'cancelled'].includes(job.status);
  if (!full) return;
  // The timeline: made, first started, each failed attempt, the end.
  const tl = $('d-timeline');
  tl.textContent = '';
  item(tl, time(job.createdAt) + '  created');
  if (job.startedAt) item(tl, time(job.startedAt) + '  started');
  for (const e of job.errors || [])
    item(tl, time(e.at) + '  attempt ' + e.attempt + ' failed' +
         (e.attempt < job.attempts ? ', ran again'
          : job.status === 'pending' ? ', will run again' : ''));
  if (job.completedAt) item(tl, time(job.completedAt) + '  ' + job.status);
  item(tl, 'attempts ' + job.attempts + ' of ' + job.maxAttempts);
  $('d-errors').textContent = '';
  for (const e of job.errors || [])
    item($('d-errors'), 'attempt ' + e.attempt + ': ' + e.error);
  $('d-input').textContent = JSON.stringify(job.input, null, 2);
  $('d-output').textContent = job.output == null ? '(none yet)'
    : JSON.stringify(job.output, null, 2);
}

async function select(id) {
  state.selected = id;
  detail(await api('GET', '/v1/jobs/' + id), true);
}

async function act(what) {
  if (!state.selected) return;
  try {
    detail(await api('POST', '/v1/jobs/' + state.selected + '/' + what), true);
  } catch (e) { $('d-message').textContent = e.message; }
}

// Events come in bursts: bring the counts up to date at most twice a second.
function overviewSoon() {
  if (state.soon) return;
  state.soon = setTimeout(() => { state.soon = null; overview(); }, 500);
}

// Jobs a minute, from the broker's counters over the last five minutes of
// samples (null until two samples are there).
function perMinute(name) {
  const s = state.samples;
  if (s.length < 2) return null;
  const a = s[0], b = s[s.length - 1];
  if (b.t === a.t || b[name] < a[name]) return null;  // a broker restart
  return Math.round((b[name] - a[name]) * 60000 / (b.t - a.t));
}

function ago(ms) {
  return ms < 1000 ? 'just now' : ms < 60000 ? Math.round(ms / 1000) + ' s ago'
    : Math.round(ms / 60000) + ' min ago';
}

async function overview() {
  try {
    await api('GET', '/readyz');
    $('broker').textContent = 'broker up';
    $('broker').className = 'pill up';
  } catch (e) {
    $('broker').textContent = 'broker down';
    $('broker').className = 'pill down';
  }
  try {
    const st = await api('GET', '/v1/stats');
    for (const card of document.querySelectorAll('.card[data-state]'))
      card.querySelector('b').textContent = st.totals[card.dataset.state] ?? 0;
    if (st.counters) {
      const now = Date.now();
      state.samples.push({ t: now, enqueued: st.counters.enqueued,
                           completed: st.counters.completed });
      while (state.samples.length > 2 && state.samples[0].t < now - 300000)
        state.samples.shift();
      $('in-rate').textContent = perMinute('enqueued') ?? '–';
      $('out-rate').textContent = perMinute('completed') ?? '–';
    }
    const w = await api('GET', '/v1/workers');
    $('nworkers').textContent = w.workers.length;
    $('wrows').textContent = '';
    for (const k of w.workers) {
      const tr = document.createElement('tr');
      cell(tr, k.name);
      cell(tr, k.types.join(', '));
      cell(tr, k.active + ' / ' + k.capacity);
      cell(tr, ago(k.seenMs), k.seenMs > 3000 ? 'late' : '');
      $('wrows').appendChild(tr);
    }
  } catch (e) { /* a token of some shops sees no totals */ }
}

$('filters').addEventListener('submit', (e) => { e.preventDefault(); load(false); });
$('more').addEventListener('click', () => load(true));
$('d-cancel').addEventListener('click', () => act('cancel'));
$('d-retry').addEventListener('click', () => act('retry'));
$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  document.cookie = 'jobq_token=' + encodeURIComponent($('token').value) +
                    '; path=/; SameSite=Strict';
  $('login').hidden = true;
  load(false); overview();
});
load(false).catch(() => {});
overview();
setInterval(overview, 3000);
