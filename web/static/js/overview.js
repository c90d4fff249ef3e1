// The Overview, the console's landing view: how much mail is going out and
// whether anything is stuck, from GET /api/stats every two seconds. Live charts
// (uPlot) of what happened to mail each second over the last five minutes; tiles
// for the outbox, the emails waiting, the dead letters, the mail server and the
// broker, each linking to where to act; and a search by recipient, the quickest
// way to "did this person get this email?".
import { api, el, every, go, input, labelled, onSubmit, submitButton } from './core.js';

// How often the figures are asked for, in milliseconds.
const REFRESH = 2000;

// The per-second series, in the API's names, with how they are shown.
const KINDS = {
  accepted: { label: 'Accepted', stroke: '#2b5797' },
  sent: { label: 'Sent', stroke: '#1a7f37', dash: [6, 3] },
  deferred: { label: 'Deferred', stroke: '#b35900' },
  bounced: { label: 'Bounced', stroke: '#a3141c', dash: [6, 3] },
  dead_lettered: { label: 'Dead-lettered', stroke: '#6f42c1', dash: [2, 3] },
};

// The charts: what flows, and what goes wrong (a smaller scale of its own).
const CHARTS = [
  { id: 'chart-flow', title: 'Accepted and sent', kinds: ['accepted', 'sent'] },
  { id: 'chart-trouble', title: 'Deferred, bounced and dead-lettered', kinds: ['deferred', 'bounced', 'dead_lettered'] },
];

// The email statuses, in the order mail moves through them.
const STATUSES = ['scheduled', 'queued', 'retrying', 'sent', 'dead', 'cancelled'];

// The windows the charts and totals can show, in seconds; the API keeps 300.
const WINDOWS = [[60, 'Last minute'], [300, 'Last 5 minutes']];

// chosenWindow is the window the operator picked, kept while the tab is open.
// Until then a narrow screen shows the last minute: five minutes of seconds on
// a phone would be a pixel each.
let chosenWindow = null;

export const overview = {
  route: /^overview$/,
  show(root) {
    let windowSeconds = chosenWindow || (window.matchMedia('(max-width: 40rem)').matches ? 60 : 300);
    let latest = null; // the last answer, redrawn when the window changes
    const charts = CHARTS.map((c) => chartBlock(c));
    const draw = () => {
      const w = latest.series ? windowed(latest.series, windowSeconds) : null;
      drawTiles(latest);
      drawTotals(w, latest.errors && latest.errors.series);
      for (const c of charts) c.draw(w);
    };
    const pick = el('select');
    pick.id = 'window';
    for (const [seconds, label] of WINDOWS) pick.append(new Option(label, String(seconds), false, seconds === windowSeconds));
    pick.addEventListener('change', () => {
      windowSeconds = chosenWindow = Number(pick.value);
      if (latest) draw();
    });
    const heading = el('h3', 'Mail per second');
    heading.id = 'flow-heading';
    const controls = el('div', null, 'row');
    controls.append(...labelled('Show', pick));
    const flow = el('section', null, 'flow');
    flow.setAttribute('aria-labelledby', heading.id);
    flow.append(heading, controls, totalsBlock(), ...charts.map((c) => c.figure));
    root.append(el('h2', 'Overview'), findForm(), tilesBlock(), flow);

    let stopped = false;
    const stopPolling = every(REFRESH, async () => {
      const s = await api('GET', '/api/stats');
      if (stopped) return; // the operator left while the answer was on its way
      latest = s;
      draw();
    });
    return () => {
      stopped = true;
      stopPolling();
      for (const c of charts) c.destroy();
    };
  },
};

// windowed is the last `seconds` of the API's series: {xs, counts, since,
// seconds}, where xs are the seconds (Unix time) and a count from before the
// server started counting is null (a gap, not a zero).
function windowed(series, seconds) {
  const n = Math.min(seconds, series.counts.accepted.length);
  const last = Date.parse(series.last) / 1000;
  const since = Math.floor(Date.parse(series.since) / 1000);
  const xs = Array.from({ length: n }, (_, i) => last - (n - 1 - i));
  const counts = {};
  for (const kind of Object.keys(KINDS)) {
    counts[kind] = series.counts[kind].slice(-n).map((v, i) => (xs[i] < since ? null : v));
  }
  return { xs, counts, since, seconds: n };
}

// findForm is the search by recipient: it opens the emails list filtered to
// that address, where each email shows its status and why.
function findForm() {
  const address = input({ id: 'find-recipient', type: 'search', inputMode: 'email', required: true, placeholder: 'jane@example.com' });
  const form = el('form', null, 'row find');
  form.id = 'find-form';
  form.setAttribute('role', 'search');
  form.append(...labelled('Find an email by recipient', address), submitButton('Find'));
  onSubmit(form, async () => {
    go('emails?' + new URLSearchParams({ recipient: address.value.trim() }));
  });
  const hint = el('p', 'Did someone get an email? Their address lists every email to them, its status and why.', 'hint');
  const wrap = el('div');
  wrap.append(form, hint);
  return wrap;
}

// totalsBlock holds the totals of each series over the window: the counters an
// operator watches move.
function totalsBlock() {
  const list = el('dl', null, 'totals');
  list.id = 'totals';
  for (const [kind, k] of Object.entries(KINDS)) {
    const dt = el('dt', k.label, 'kind-' + kind);
    const dd = el('dd', '–');
    dd.id = 'total-' + kind;
    const item = el('div', null, 'total');
    item.append(dt, dd);
    list.append(item);
  }
  const caption = el('p', '', 'hint');
  caption.id = 'totals-window';
  const wrap = el('div');
  wrap.append(list, caption);
  return wrap;
}

// drawTotals writes each series' total over the window, and says what the
// window is.
function drawTotals(w, error) {
  const caption = document.getElementById('totals-window');
  if (!w) {
    caption.textContent = 'The counts could not be read: ' + error;
    return;
  }
  for (const kind of Object.keys(KINDS)) {
    document.getElementById('total-' + kind).textContent = sum(w.counts[kind]);
  }
  const span = w.seconds === 60 ? 'the last minute' : `the last ${w.seconds / 60} minutes`;
  caption.textContent = w.since > w.xs[0]
    ? `In ${span}, since this server started at ${new Date(w.since * 1000).toLocaleTimeString()} (the counts start with it).`
    : `In ${span}.`;
}

// The tiles: [id, title, where its value links to (none: plain text)].
const TILES = [
  ['smtp', 'Mail server'],
  ['broker', 'Broker'],
  ['outbox', 'Outbox backlog'],
  ['retrying', 'Retrying', '#/emails?status=retrying'],
  ['scheduled', 'Scheduled', '#/emails?status=scheduled'],
  ['dead-letters', 'Dead letters parked', '#/dead-letters'],
];

// tilesBlock lays out the tiles, each a heading, a value and a line of detail,
// and the line of emails by status. Links are made once and only their text
// changes as figures come: one rebuilt every two seconds would lose the
// keyboard focus.
function tilesBlock() {
  const grid = el('div', null, 'tiles');
  grid.id = 'tiles';
  for (const [id, title, href] of TILES) {
    const tile = el('section', null, 'tile');
    tile.id = 'tile-' + id;
    const h = el('h3', title);
    h.id = 'tile-' + id + '-title';
    tile.setAttribute('aria-labelledby', h.id);
    const value = el('p', href ? null : '–', 'value');
    value.id = id + '-value';
    if (href) {
      const a = el('a', '–');
      a.href = href;
      a.id = id + '-link';
      value.append(a);
    }
    const detail = el('p', '', 'detail');
    detail.id = id + '-detail';
    tile.append(h, value, detail);
    grid.append(tile);
  }
  const statuses = el('p', 'All emails by status: ', 'statuses');
  statuses.id = 'statuses';
  STATUSES.forEach((status, i) => {
    if (i > 0) statuses.append(' · ');
    const a = el('a', status);
    a.href = '#/emails?' + new URLSearchParams({ status });
    a.id = 'status-link-' + status;
    statuses.append(a);
  });
  const wrap = el('section');
  wrap.setAttribute('aria-label', 'Now');
  wrap.append(grid, statuses);
  return wrap;
}

// drawTiles fills every tile from the answer; a part the server could not read
// says so in its tile.
function drawTiles(s) {
  const errors = s.errors || {};
  drawSMTP(s.smtp, errors.smtp, s.at);
  drawBroker(s.broker, errors.broker);
  drawOutbox(s.outbox, errors.outbox);
  drawCount('retrying', s.emails, errors.emails, 'Emails a recipient deferred; retried later.');
  drawCount('scheduled', s.emails, errors.emails, 'Emails waiting for their send time.');
  drawDeadLetters(s.dead_letters, errors.dead_letters);
  drawStatuses(s.emails);
}

// tile returns the value and detail elements of a tile and marks its state (ok,
// warn, bad) for colour; the words always say it too. With text, the value
// says text: in its link when it has one.
function tile(id, state, text) {
  const value = document.getElementById(id + '-value');
  const detail = document.getElementById(id + '-detail');
  value.className = 'value' + (state ? ' ' + state : '');
  if (text !== undefined) (document.getElementById(id + '-link') || value).textContent = text;
  return { value, detail, link: document.getElementById(id + '-link') };
}

// unreadable shows in a tile that its part could not be read, and why; a part
// with no error is one this instance does not have (an API instance of a split
// deployment sends no mail: its delivery workers' /readyz show their server).
function unreadable(id, error) {
  if (!error) {
    tile(id, '', 'n/a').detail.textContent = 'Not on this instance: its delivery workers report it.';
    return;
  }
  tile(id, 'bad', 'unknown').detail.textContent = 'Could not be read: ' + error;
}

// drawSMTP shows whether mail goes out, and if not why and since when; now is
// the answer's time (the server's clock, not the browser's).
function drawSMTP(smtp, error, now) {
  if (!smtp) return unreadable('smtp', error);
  if (smtp.state === 'up') {
    tile('smtp', 'ok', 'up').detail.textContent = smtp.transport === 'capture'
      ? 'Capture transport: messages are stored, none sent.'
      : 'Sending.';
    return;
  }
  const t = tile('smtp', 'bad', 'paused');
  const why = smtp.cause === 'configuration'
    ? `It refuses Mailroom's settings${smtp.key ? ' (fix ' + smtp.key + ')' : ''}: `
    : 'It cannot be reached: ';
  const since = el('time', new Date(smtp.since).toLocaleTimeString());
  since.dateTime = smtp.since;
  t.detail.replaceChildren('Since ', since, ` (${ago(smtp.since, now)}). ${why}`, el('span', smtp.reason, 'reason'),
    '. Mail waits and loses no attempt.');
}

function drawBroker(broker, error) {
  if (!broker) return unreadable('broker', error);
  const kind = broker.kind === 'kafka' ? 'Kafka' : 'Go channels (in process)';
  tile('broker', broker.state === 'up' ? 'ok' : 'bad', broker.state).detail.textContent =
    broker.state === 'up' ? kind + '.' : `${kind}: ${broker.reason}`;
}

function drawOutbox(outbox, error) {
  if (!outbox) return unreadable('outbox', error);
  const age = outbox.oldest_due_age_seconds;
  const t = tile('outbox', age !== null && age > 60 ? 'bad' : '', String(outbox.backlog));
  const parts = [age === null ? 'Nothing due waits.' : `The oldest due message waited ${duration(age)}.`];
  if (outbox.not_due > 0) parts.push(`${outbox.not_due} held for later (scheduled sends, retries).`);
  t.detail.textContent = parts.join(' ');
}

// drawCount shows how many emails have a status, linked to the emails list
// filtered by it (the emails view reads ?status= from the hash).
function drawCount(status, emails, error, what) {
  if (!emails) return unreadable(status, error);
  const n = emails[status];
  const t = tile(status, status === 'retrying' && n > 0 ? 'warn' : '', String(n));
  t.link.setAttribute('aria-label', `List the ${status} emails (${n})`);
  t.detail.textContent = what;
}

function drawDeadLetters(deadLetters, error) {
  if (!deadLetters) return unreadable('dead-letters', error);
  const n = deadLetters.parked;
  const t = tile('dead-letters', n > 0 ? 'bad' : 'ok', String(n));
  t.link.setAttribute('aria-label', `Review the parked dead letters (${n})`);
  t.detail.textContent = n > 0 ? 'Undeliverable mail waiting for you to replay or discard it.' : 'Nothing waits for an operator.';
}

// drawStatuses writes each status's count in its link; unknown when the counts
// could not be read (the tiles say why).
function drawStatuses(emails) {
  for (const status of STATUSES) {
    document.getElementById('status-link-' + status).textContent = `${status} ${emails ? emails[status] : 'unknown'}`;
  }
}

// chartBlock makes one chart: a figure with a caption, whose plot is named in
// words with the latest figures (its text alternative), resized with its
// container.
function chartBlock(c) {
  const figure = el('figure', null, 'chart');
  const box = el('div', null, 'plot');
  box.id = c.id;
  box.setAttribute('role', 'img');
  box.setAttribute('aria-label', c.title + ' per second: waiting for the first figures.');
  figure.append(box, el('figcaption', c.title + ', per second'));

  let plot = null;
  const resize = new ResizeObserver(() => {
    const sz = size(box);
    if (plot && plot.width !== sz.width) plot.setSize(sz);
  });
  resize.observe(box);

  return {
    figure,
    // draw shows w, the window of the series (windowed), or nothing new when
    // the series could not be read.
    draw(w) {
      if (!w) return;
      const data = [w.xs, ...c.kinds.map((k) => w.counts[k])];
      if (!plot && window.uPlot) plot = new window.uPlot(plotOptions(c, size(box)), data, box);
      else if (plot) plot.setData(data);
      box.setAttribute('aria-label', describe(c, w));
    },
    destroy() {
      resize.disconnect();
      if (plot) plot.destroy();
      plot = null;
    },
  };
}

// size is the chart's size for its container: the full width, a fixed height.
function size(box) {
  return { width: Math.max(box.clientWidth, 200), height: 180 };
}

// plotOptions is the uPlot chart of c: counts from 0, one line a kind, and
// times on the axis as hh:mm on the minute and :ss between.
function plotOptions(c, sz) {
  return {
    ...sz,
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max, 1)] } },
    series: [
      { label: 'Time', value: (u, v) => (v === null ? '–' : new Date(v * 1000).toLocaleTimeString()) },
      ...c.kinds.map((kind) => ({
        label: KINDS[kind].label,
        stroke: KINDS[kind].stroke,
        dash: KINDS[kind].dash,
        width: 2,
        points: { show: false },
        value: (u, v) => (v === null ? '–' : v + '/s'),
      })),
    ],
    axes: [
      { stroke: '#5b6270', grid: { stroke: '#eceef2' }, values: (u, splits) => splits.map(clock) },
      { stroke: '#5b6270', grid: { stroke: '#eceef2' }, size: 40,
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] },
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  };
}

// clock writes a second of the time axis: "07:12" on the minute, ":15" between.
function clock(unix) {
  const d = new Date(unix * 1000);
  if (d.getSeconds() !== 0) return ':' + String(d.getSeconds()).padStart(2, '0');
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

// describe is the chart in words, its text alternative: each series' total
// over the window and its count in the last whole second (the current one is
// still being counted).
function describe(c, w) {
  const parts = c.kinds.map((k) => {
    const counts = w.counts[k];
    return `${KINDS[k].label.toLowerCase()} ${sum(counts)} (${counts[counts.length - 2] ?? 0} in the last second)`;
  });
  const span = w.seconds === 60 ? 'the last minute' : `the last ${w.seconds / 60} minutes`;
  return `${c.title} per second over ${span}: ${parts.join(', ')}.`;
}

// sum adds counts up, a gap (null) as nothing.
function sum(counts) {
  return counts.reduce((a, b) => a + (b || 0), 0);
}

// duration writes seconds for a person: "4.2 s", "3 min", "2 h 5 min".
function duration(seconds) {
  if (seconds < 10) return seconds.toFixed(1) + ' s';
  if (seconds < 60) return Math.round(seconds) + ' s';
  const min = Math.round(seconds / 60);
  if (min < 60) return min + ' min';
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

// ago is how long before now iso was.
function ago(iso, now) {
  const seconds = Math.max(0, (Date.parse(now) - Date.parse(iso)) / 1000);
  return duration(seconds) + ' ago';
}
