// The dead letters: what could not be delivered, waiting for an operator to
// replay or discard it, one at a time, a chosen few, or every one a filter
// matches (after a preview of how many that is).
import { $, api, ask, badge, button, el, field, fromLocalInput, go, input, onSubmit, run, say, submitButton, table, time } from './core.js';

let shown = null; // the query of the letters listed: {status, reason, since, until, cursor}
const chosen = new Map(); // the letters ticked for a replay: letter id -> its name

export const deadLetters = {
  route: /^dead-letters$/,
  show(root) {
    chosen.clear();
    const view = el('section', null, 'dead-letters');
    const letters = table('Dead letters, newest first',
      ['', 'Email', 'Recipients', 'Reason', 'Attempts', 'Dead-lettered', 'Status', ''],
      { id: 'letters', empty: 'No dead letters match.' });
    letters.table.querySelector('th').replaceChildren(selectAllBox());
    const more = button('Load more', null, () => load(true));
    more.id = 'more';
    more.hidden = true;
    view.append(el('h2', 'Dead letters'), filterForm(), bulkBar(), letters.wrap, letters.empty, more);
    root.append(view);
    run(null, () => load(false));
  },
};

// filterForm is what an operator narrows the list by: status, reason, and when
// the letters were parked. The same reason and times say what "Replay all
// matching" replays.
function filterForm() {
  const status = el('select');
  status.id = 'status';
  for (const s of ['parked', 'all', 'replayed', 'discarded']) status.append(new Option(s, s));
  const reason = input({ id: 'reason', type: 'search', placeholder: '550, timeout, example.com' });
  const since = input({ id: 'since', type: 'datetime-local', className: 'when' });
  const until = input({ id: 'until', type: 'datetime-local', className: 'when' });
  const form = el('form', null, 'row filter');
  form.id = 'filter-form';
  form.append(field('Status', status), field('Reason contains', reason),
    field('Parked from', since), field('until', until), submitButton('Show'));
  onSubmit(form, () => load(false));
  return form;
}

// bulkBar holds the replays of many: of the ticked rows, and of every parked
// letter the filter matches.
function bulkBar() {
  // Not core's button: run would enable it again after the replay, with nothing
  // left ticked; updateSelection decides.
  const selected = el('button', 'Replay selected (0)');
  selected.type = 'button';
  selected.id = 'replay-selected';
  selected.disabled = true;
  selected.addEventListener('click', () => run(null, async () => {
    selected.disabled = true;
    try {
      await replaySelected();
    } finally {
      updateSelection();
    }
  }));
  const matching = button('Replay all matching…', null, replayMatching);
  matching.id = 'replay-matching';
  const count = el('span', '', 'hint');
  count.id = 'letters-count';
  count.setAttribute('aria-live', 'polite');
  const bar = el('div', null, 'row bulk');
  bar.append(selected, matching, count);
  return bar;
}

function selectAllBox() {
  const box = input({ id: 'select-all', type: 'checkbox' });
  const label = el('label', null, 'select-all');
  label.title = 'Select all shown';
  label.append(box, el('span', 'Select all shown', 'visually-hidden'));
  box.addEventListener('change', () => {
    for (const b of document.querySelectorAll('#letters-body input.pick')) {
      b.checked = box.checked;
      pick(b);
    }
    updateSelection();
  });
  return label;
}

// filter is the form's filter as the API takes it; a bad time throws.
function filter() {
  const f = { status: $('status').value, reason: $('reason').value.trim() };
  for (const name of ['since', 'until']) {
    const v = $(name).value;
    if (v) f[name] = fromLocalInput(v, name);
  }
  return f;
}

// query is the list's query string for filter f.
function query(f) {
  const params = new URLSearchParams({ status: f.status });
  if (f.reason) params.set('reason_contains', f.reason);
  if (f.since) params.set('since', f.since);
  if (f.until) params.set('until', f.until);
  return params;
}

async function load(more) {
  const q = more ? shown : { ...filter(), cursor: '' };
  const params = query(q);
  if (q.cursor) params.set('cursor', q.cursor);
  params.set('include_total', 'true');
  const page = await api('GET', '/api/dead-letters?' + params);
  const body = $('letters-body');
  if (!body) return; // the operator left the view
  if (!more) {
    body.replaceChildren();
    chosen.clear();
  }
  for (const l of page.items) body.append(row(l));
  shown = { ...q, cursor: page.next_cursor || '' };
  $('more').hidden = !shown.cursor;
  $('letters-empty').hidden = body.rows.length > 0;
  $('letters-count').textContent = `Showing ${body.rows.length} of ${page.total} ${q.status === 'all' ? '' : q.status + ' '}dead letter${page.total === 1 ? '' : 's'}.`;
  updateSelection();
}

function row(l) {
  const tr = document.createElement('tr');
  const name = l.email_id || l.id;
  const pickCell = el('td', null, 'pick');
  if (l.status === 'parked' && l.email_id) {
    const box = input({ type: 'checkbox', className: 'pick', value: l.id });
    box.dataset.name = name;
    box.setAttribute('aria-label', 'Select ' + name);
    box.addEventListener('change', () => {
      pick(box);
      updateSelection();
    });
    pickCell.append(box);
  }
  const when = el('td');
  when.append(time(l.dead_lettered_at));
  const reason = el('td', null, 'reason');
  reason.append(el('span', l.reason));
  if (l.error_class) reason.append(el('span', l.error_class, 'class'));
  const status = el('td', null, 'status');
  status.append(badge(l.status));
  tr.append(pickCell, emailCell(l), recipientsCell(l.recipients), reason, el('td', l.attempts), when, status,
    actionsCell(l, name));
  return tr;
}

// emailCell names the letter's email: its subject and its id, a link to its page.
function emailCell(l) {
  const td = el('td', null, 'email');
  td.append(el('span', l.subject || '(no subject)', 'subject'));
  if (l.email_id) {
    const a = el('a', l.email_id, 'id');
    a.href = '#/emails/' + encodeURIComponent(l.email_id);
    td.append(a);
  } else {
    td.append(el('span', l.id + ' (no email)', 'id'));
  }
  return td;
}

// recipientsCell lists the recipients that were not delivered, with their state
// and the server's last word on each.
function recipientsCell(recipients) {
  const td = el('td', null, 'recipients');
  if (!recipients || recipients.length === 0) return td;
  const ul = el('ul');
  for (const r of recipients) {
    const li = el('li');
    li.append(el('span', r.address, 'address'));
    const state = [r.type && r.type !== 'to' ? r.type : '', r.status,
      r.attempts ? `${r.attempts} attempt${r.attempts === 1 ? '' : 's'}` : ''].filter(Boolean).join(', ');
    if (state) li.append(el('span', state, 'state'));
    if (r.detail) li.append(el('span', r.detail, 'detail'));
    ul.append(li);
  }
  td.append(ul);
  return td;
}

function actionsCell(l, name) {
  const actions = el('td', null, 'actions');
  if (l.status === 'parked') {
    if (l.email_id) actions.append(button('Replay', 'Replay ' + name, () => replay(l)));
    actions.append(button('Discard', 'Discard ' + name, () => discard(l)));
  }
  return actions;
}

// pick keeps a row's checkbox in the selection.
function pick(box) {
  if (box.checked) chosen.set(box.value, box.dataset.name);
  else chosen.delete(box.value);
}

// updateSelection shows how many rows are ticked on the replay button and in the
// select-all box (ticked, unticked, or partly).
function updateSelection() {
  const b = $('replay-selected');
  if (!b) return;
  b.textContent = `Replay selected (${chosen.size})`;
  b.disabled = chosen.size === 0;
  const boxes = document.querySelectorAll('#letters-body input.pick');
  const ticked = [...boxes].filter((x) => x.checked).length;
  const all = $('select-all');
  all.checked = boxes.length > 0 && ticked === boxes.length;
  all.indeterminate = ticked > 0 && ticked < boxes.length;
  all.disabled = boxes.length === 0;
}

async function replay(l) {
  await api('POST', `/api/dead-letters/${encodeURIComponent(l.id)}/replay`);
  go('emails/' + encodeURIComponent(l.email_id), `Replay queued for email ${l.email_id}.`); // follow it there
}

async function discard(l) {
  const name = l.email_id || l.id;
  if (!await ask(`Discard dead letter ${name}?`, 'Discard', 'It is not sent; the email stays dead.')) return;
  await api('DELETE', `/api/dead-letters/${encodeURIComponent(l.id)}`);
  say(`Discarded ${name}.`);
  await load(false);
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

async function replaySelected() {
  const ids = [...chosen.keys()];
  if (ids.length === 0) return;
  const names = [...chosen.values()];
  const detail = names.length <= 5 ? names.join(', ') : `${names.slice(0, 5).join(', ')} and ${names.length - 5} more`;
  if (!await ask(`Replay ${plural(ids.length, 'selected dead letter', 'selected dead letters')}?`, 'Replay',
    `Their emails are sent again to the recipients that did not get them: ${detail}.`)) return;
  const out = await api('POST', '/api/dead-letters/replay', { ids });
  report(out);
  await load(false);
}

// replayMatching asks the API how many parked letters the filter matches, shows
// the operator that number, and replays them if they agree.
async function replayMatching() {
  const f = { ...filter(), status: 'parked' };
  const params = query(f);
  params.set('limit', '1');
  params.set('include_total', 'true');
  const { total } = await api('GET', '/api/dead-letters?' + params);
  if (total === 0) {
    say('No parked dead letters match; nothing to replay.');
    return;
  }
  if (!await ask(`Replay ${plural(total, 'parked dead letter', 'parked dead letters')}${describe(f)}?`, 'Replay',
    'Their emails are sent again to the recipients that did not get them.')) return;
  const body = { reason_contains: f.reason };
  if (f.since) body.since = f.since;
  if (f.until) body.until = f.until;
  report(await api('POST', '/api/dead-letters/replay', body));
  await load(false);
}

// describe says in words which letters filter f matches: " whose reason contains
// '550', parked since 6 Dec 2026, 07:00".
function describe(f) {
  const parts = [];
  if (f.reason) parts.push(`whose reason contains '${f.reason}'`);
  if (f.since) parts.push(`parked since ${new Date(f.since).toLocaleString()}`);
  if (f.until) parts.push(`parked before ${new Date(f.until).toLocaleString()}`);
  return parts.length ? ' ' + parts.join(', ') : '';
}

// report says how a replay of many went, naming what it skipped and why.
function report(out) {
  let text = `Replayed ${plural(out.replayed, 'dead letter', 'dead letters')}.`;
  if (out.skipped.length > 0) {
    const why = out.skipped.slice(0, 3).map((s) => `${s.id}: ${s.reason}`).join('; ');
    text += ` Skipped ${out.skipped.length}: ${why}${out.skipped.length > 3 ? '; …' : ''}`;
  }
  say(text, out.skipped.length > 0 && out.replayed === 0);
}
