// Mailroom operator console: plain JavaScript, no framework, no build step.
//
// Everything the API returns may be hostile (subjects, SMTP replies, reasons come
// from outside), so it is put on the page with textContent and DOM nodes only,
// never innerHTML. The API key stays in sessionStorage: this tab, until it closes.
'use strict';

const KEY = 'mailroom.apiKey';
const $ = (id) => document.getElementById(id);

let shown = null; // the query of the dead letters listed: {status, reason, cursor}
let lookups = 0; // counts email lookups, so that only the latest one is drawn
let refresh = 0; // timer of the lookup that follows an email until it settles

// api calls the API with the key and returns the decoded answer (null for 204).
// A failure throws an Error whose message is the API's own: "401 unauthorized:
// missing or invalid API key".
async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY);
  if (!key) throw new Error('Enter an API key first.');
  const init = { method, headers: { Authorization: 'Bearer ' + key } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    throw new Error('The server did not answer: ' + e.message);
  }
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => null);
  if (!resp.ok) {
    const err = (data && data.error) || {};
    throw new Error(`${resp.status} ${err.code || resp.statusText}: ${err.message || 'no error message'}`);
  }
  return data;
}

function say(text, isError = false) {
  const m = $('message');
  m.textContent = text;
  m.classList.toggle('error', isError);
}

// run runs an action for a button or form, keeping the button disabled meanwhile
// and showing any failure.
async function run(button, action) {
  if (button) button.disabled = true;
  try {
    await action();
  } catch (e) {
    say(e.message, true);
  } finally {
    if (button) button.disabled = false;
  }
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function time(iso) {
  const t = el('time', iso ? new Date(iso).toLocaleString() : '');
  if (iso) t.dateTime = iso;
  return t;
}

function button(label, ariaLabel, onClick) {
  const b = el('button', label);
  b.type = 'button';
  b.setAttribute('aria-label', ariaLabel);
  b.addEventListener('click', () => run(b, () => onClick(b)));
  return b;
}

// Dead letters

async function loadLetters(more) {
  const q = more ? shown : { status: $('status').value, reason: $('reason').value, cursor: '' };
  const params = new URLSearchParams({ status: q.status });
  if (q.reason) params.set('reason_contains', q.reason);
  if (q.cursor) params.set('cursor', q.cursor);
  const page = await api('GET', '/api/dead-letters?' + params);
  const body = $('letters-body');
  if (!more) body.replaceChildren();
  for (const l of page.items) body.append(letterRow(l));
  shown = { ...q, cursor: page.next_cursor || '' };
  $('more').hidden = !shown.cursor;
  $('letters-empty').hidden = body.rows.length > 0;
}

function letterRow(l) {
  const tr = document.createElement('tr');
  const name = l.email_id || l.id;
  const first = el('td');
  if (l.email_id) {
    const look = button(l.email_id, 'Look up email ' + l.email_id, () => lookup(l.email_id, 0, true));
    look.className = 'link';
    first.append(look);
  } else {
    first.textContent = l.id;
  }
  const when = el('td');
  when.append(time(l.dead_lettered_at));
  const actions = el('td', null, 'actions');
  if (l.status === 'parked') {
    if (l.email_id) actions.append(button('Replay', 'Replay ' + name, () => replay(l)));
    actions.append(button('Discard', 'Discard ' + name, () => discard(l)));
  }
  tr.append(first, el('td', l.reason, 'reason'), el('td', l.error_class), el('td', l.attempts),
    when, el('td', l.status), actions);
  return tr;
}

async function replay(l) {
  await api('POST', `/api/dead-letters/${encodeURIComponent(l.id)}/replay`);
  say(`Replay queued for email ${l.email_id}.`);
  await loadLetters(false);
  // The email turns from dead to queued once its replay is recorded: follow it.
  await lookup(l.email_id, Date.now() + 10000, true);
}

async function discard(l) {
  const name = l.email_id || l.id;
  if (!confirm(`Discard dead letter ${name}? It is not sent; the email stays dead.`)) return;
  await api('DELETE', `/api/dead-letters/${encodeURIComponent(l.id)}`);
  say(`Discarded ${name}.`);
  await loadLetters(false);
}

async function replayMatching() {
  const reason = $('reason').value;
  const question = reason
    ? `Replay every parked dead letter whose reason contains "${reason}"?`
    : 'Replay every parked dead letter?';
  if (!confirm(question)) return;
  const out = await api('POST', '/api/dead-letters/replay', { reason_contains: reason });
  say(`Replayed ${out.replayed} dead letter${out.replayed === 1 ? '' : 's'}.`);
  await loadLetters(false);
}

// Email lookup

// lookup shows the email and its timeline, scrolled into view when reveal is set
// (an operator asked for it from elsewhere on the page). While it is on its way
// (queued, retrying), or still dead before settleBy (a replay not yet recorded),
// it is looked up again every second, where it is.
async function lookup(id, settleBy = 0, reveal = false) {
  clearTimeout(refresh);
  const seq = ++lookups;
  $('email-id').value = id;
  const e = await api('GET', `/api/emails/${encodeURIComponent(id)}`);
  if (seq !== lookups) return;
  $('email-status').textContent = e.status;
  $('email-subject').textContent = e.subject;
  $('email-to').textContent = (e.to || []).join(', ');
  $('email-attempts').textContent = e.attempts;
  $('email-error').textContent = e.last_error || '—';
  $('email-events').replaceChildren(...(e.events || []).map((ev) => {
    const li = el('li');
    li.append(time(ev.at), ' ', el('strong', ev.type));
    if (ev.detail) li.append(': ', ev.detail);
    return li;
  }));
  $('email').hidden = false;
  if (reveal) $('email-heading').scrollIntoView({ block: 'start' });
  const moving = e.status === 'queued' || e.status === 'retrying';
  if (moving || (e.status === 'dead' && Date.now() < settleBy)) {
    refresh = setTimeout(() => run(null, () => lookup(id, settleBy)), 1000);
  }
}

// Wiring

function useKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

document.addEventListener('DOMContentLoaded', () => {
  const submit = (form, action) => form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(form.querySelector('button[type=submit]'), action);
  });
  submit($('key-form'), async () => {
    useKey($('key').value.trim());
    await loadLetters(false);
    say('Key accepted.');
  });
  $('forget-key').addEventListener('click', () => {
    useKey('');
    $('key').value = '';
    $('letters-body').replaceChildren();
    $('more').hidden = true;
    $('email').hidden = true;
    say('Key forgotten.');
  });
  submit($('filter-form'), () => loadLetters(false));
  submit($('email-form'), () => lookup($('email-id').value.trim()));
  const more = $('more');
  more.addEventListener('click', () => run(more, () => loadLetters(true)));
  const bulk = $('replay-matching');
  bulk.addEventListener('click', () => run(bulk, replayMatching));

  if (sessionStorage.getItem(KEY)) {
    $('key').value = sessionStorage.getItem(KEY);
    run(null, () => loadLetters(false));
  } else {
    say('Enter an admin key to begin.');
  }
});
