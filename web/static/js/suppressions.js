// The suppression list: the addresses Mailroom does not send to, because their
// server said they do not exist (a hard bounce) or because an operator said so.
// An operator finds an address, sees why and since when, adds one or removes one.
import { $, api, ask, button, el, input, labelled, onSubmit, run, say, submitButton, table, time } from './core.js';

let shown = null; // the query of the addresses listed: {address, cursor}

export const suppressions = {
  route: /^suppressions$/,
  show(root) {
    const view = el('section', null, 'suppressions');
    const list = table('Suppressed addresses, newest first', ['Address', 'Why', 'Since', ''],
      { id: 'suppressions', empty: 'No suppressed addresses match.' });
    const more = button('Load more', null, () => load(true));
    more.id = 'suppressions-more';
    more.hidden = true;
    view.append(el('h2', 'Suppressions'),
      el('p', 'Mail to these addresses is not sent: each recipient on the list is marked suppressed. ' +
        'A hard bounce (550, 553) adds its address; remove it once the mailbox works again.', 'hint'),
      addForm(), el('h3', 'Suppressed addresses'), searchForm(), list.wrap, list.empty, more);
    root.append(view);
    run(null, () => load(false));
  },
};

// addForm suppresses an address, with why.
function addForm() {
  const address = input({ id: 'suppress-address', type: 'email', required: true, placeholder: 'someone@example.com' });
  const reason = input({ id: 'suppress-reason', maxLength: 500, placeholder: 'asked to be removed' });
  const form = el('form', null, 'row add');
  form.id = 'suppress-form';
  form.append(...labelled('Address', address), ...labelled('Reason (optional)', reason), submitButton('Suppress'));
  onSubmit(form, async () => {
    const s = await api('POST', '/api/suppressions', { address: address.value.trim(), reason: reason.value.trim() });
    address.value = '';
    reason.value = '';
    say(`${s.address} is suppressed (${s.reason}), since ${new Date(s.created_at).toLocaleString()}.`);
    await load(false);
  });
  return form;
}

// searchForm narrows the list to addresses containing some text.
function searchForm() {
  const search = input({ id: 'suppressions-search', type: 'search', placeholder: 'example.com' });
  const form = el('form', null, 'row');
  form.id = 'suppressions-search-form';
  form.setAttribute('role', 'search');
  form.append(...labelled('Address contains', search), submitButton('Search'));
  onSubmit(form, () => load(false));
  return form;
}

async function load(more) {
  const q = more ? shown : { address: $('suppressions-search').value.trim(), cursor: '' };
  const params = new URLSearchParams();
  if (q.address) params.set('address', q.address);
  if (q.cursor) params.set('cursor', q.cursor);
  const page = await api('GET', '/api/suppressions?' + params);
  const body = $('suppressions-body');
  if (!body) return; // the operator left the view
  if (!more) body.replaceChildren();
  for (const s of page.items) body.append(row(s));
  shown = { ...q, cursor: page.next_cursor || '' };
  $('suppressions-more').hidden = !shown.cursor;
  $('suppressions-empty').hidden = body.rows.length > 0;
}

function row(s) {
  const tr = document.createElement('tr');
  const since = el('td');
  since.append(time(s.created_at));
  const actions = el('td', null, 'actions');
  actions.append(button('Remove', 'Remove ' + s.address, () => remove(s)));
  tr.append(el('td', s.address, 'address'), why(s), since, actions);
  return tr;
}

// why says how the address came on the list: a bounce (the server's reply and the
// email that bounced) or an operator (their reason).
function why(s) {
  const td = el('td', null, 'why');
  const bounce = s.source === 'bounce';
  td.append(el('span', bounce ? 'Bounce' : 'Added by an operator', 'source ' + s.source));
  if (s.reason) td.append(el('span', s.reason, 'reason'));
  if (s.detail) td.append(el('span', s.detail, 'detail'));
  if (s.email_id) {
    const a = el('a', s.email_id, 'id');
    a.href = '#/emails/' + encodeURIComponent(s.email_id);
    a.setAttribute('aria-label', 'The email that bounced: ' + s.email_id);
    td.append(a);
  }
  return td;
}

async function remove(s) {
  if (!await ask(`Remove ${s.address} from the suppression list?`, 'Remove',
    'Mail to it is sent again from now on.')) return;
  await api('DELETE', `/api/suppressions/${encodeURIComponent(s.address)}`);
  say(`${s.address} is no longer suppressed.`);
  await load(false);
}
