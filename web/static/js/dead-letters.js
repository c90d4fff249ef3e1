// The dead letters: what could not be delivered, waiting for an operator to
// replay or discard it.
import { $, api, ask, button, el, go, labelled, onSubmit, run, say, table, time } from './core.js';

let shown = null; // the query of the letters listed: {status, reason, cursor}

export const deadLetters = {
  route: /^dead-letters$/,
  show(root) {
    const status = el('select');
    status.id = 'status';
    for (const s of ['parked', 'all', 'replayed', 'discarded']) status.append(new Option(s, s));
    const reason = el('input');
    reason.id = 'reason';
    reason.type = 'search';
    reason.spellcheck = false;
    const filter = el('form', null, 'row');
    filter.id = 'filter-form';
    const show = el('button', 'Show');
    show.type = 'submit';
    const bulk = button('Replay all matching reason', null, replayMatching);
    bulk.id = 'replay-matching';
    filter.append(...labelled('Status', status), ...labelled('Reason contains', reason), show, bulk);
    onSubmit(filter, () => load(false));

    const letters = table('Dead letters, newest first',
      ['Email or letter', 'Reason', 'Error class', 'Attempts', 'Dead-lettered', 'Status', '']);
    letters.table.id = 'letters';
    letters.body.id = 'letters-body';
    const empty = el('p', 'No dead letters match.');
    empty.id = 'letters-empty';
    empty.hidden = true;
    const more = button('Load more', null, () => load(true));
    more.id = 'more';
    more.hidden = true;

    const h2 = el('h2', 'Dead letters');
    root.append(h2, filter, letters.wrap, empty, more);
    run(null, () => load(false));
  },
};

async function load(more) {
  const q = more ? shown : { status: $('status').value, reason: $('reason').value, cursor: '' };
  const params = new URLSearchParams({ status: q.status });
  if (q.reason) params.set('reason_contains', q.reason);
  if (q.cursor) params.set('cursor', q.cursor);
  const page = await api('GET', '/api/dead-letters?' + params);
  const body = $('letters-body');
  if (!body) return; // the operator left the view
  if (!more) body.replaceChildren();
  for (const l of page.items) body.append(row(l));
  shown = { ...q, cursor: page.next_cursor || '' };
  $('more').hidden = !shown.cursor;
  $('letters-empty').hidden = body.rows.length > 0;
}

function row(l) {
  const tr = document.createElement('tr');
  const name = l.email_id || l.id;
  const first = el('td');
  if (l.email_id) {
    const a = el('a', l.email_id, 'id');
    a.href = '#/emails/' + encodeURIComponent(l.email_id);
    first.append(a);
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
  go('emails/' + encodeURIComponent(l.email_id)); // follow it there
}

async function discard(l) {
  const name = l.email_id || l.id;
  if (!await ask(`Discard dead letter ${name}?`, 'Discard', 'It is not sent; the email stays dead.')) return;
  await api('DELETE', `/api/dead-letters/${encodeURIComponent(l.id)}`);
  say(`Discarded ${name}.`);
  await load(false);
}

async function replayMatching() {
  const reason = $('reason').value;
  const question = reason
    ? `Replay every parked dead letter whose reason contains "${reason}"?`
    : 'Replay every parked dead letter?';
  if (!await ask(question, 'Replay')) return;
  const out = await api('POST', '/api/dead-letters/replay', { reason_contains: reason });
  say(`Replayed ${out.replayed} dead letter${out.replayed === 1 ? '' : 's'}.`);
  await load(false);
}
