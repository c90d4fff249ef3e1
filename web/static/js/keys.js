// The API keys: who may call the API. An operator makes a key for a service (send
// scope, limited to the senders it sends as) or for a person (admin), sees it this
// once, and revokes it when it leaks or is no longer needed. The list never holds
// a key itself, only its first characters (prefix).
import { $, api, ask, badge, button, el, field, input, keyInUse, onSubmit, run, say, submitButton, table, time } from './core.js';
import { showOnce } from './shown-once.js';

// cliCreate is how an admin key is made on the server when none is left.
const cliCreate = 'mailroom keys create --name NAME --scope admin';

export const keys = {
  route: /^keys$/,
  show(root) {
    const created = el('div');
    created.id = 'new-key-slot';
    const list = table('API keys, oldest first', ['Name', 'Starts with', 'Scope', 'May send as', 'Created', 'Status', ''],
      { id: 'keys', empty: 'No stored keys: only the keys of auth.api_keys in the configuration can call the API.' });
    root.append(el('h2', 'API keys'), created, list.wrap, list.empty,
      el('p', 'Keys set in the configuration (auth.api_keys) act as admin and are not listed here.', 'hint'),
      createForm());
    run(null, load);
  },
};

// createForm makes the form that creates a key.
function createForm() {
  const name = input({ id: 'key-name', required: true, maxLength: 100, placeholder: 'billing service' });
  const scope = el('select');
  scope.id = 'key-scope';
  scope.append(new Option('send: sends, reads its own emails', 'send'),
    new Option('admin: everything', 'admin'));
  const from = input({ id: 'key-from', placeholder: 'example.com, billing@example.org', 'aria-describedby': 'key-from-hint' });
  const hint = el('p', 'Domains and addresses the key may send as, separated by commas or spaces; '
    + 'a domain allows every address at it (not its subdomains). Empty: any sender.', 'hint');
  hint.id = 'key-from-hint';
  const form = el('form', null, 'key-create');
  form.id = 'key-create-form';
  form.autocomplete = 'off';
  const fields = el('div', null, 'fields');
  fields.append(field('Name', name), field('Scope', scope), field('Sender restriction', from));
  form.append(el('h3', 'Create a key'), fields, hint, submitButton('Create key'));
  onSubmit(form, async () => {
    const allowed = from.value.split(/[\s,]+/).filter(Boolean);
    const k = await api('POST', '/api/keys', { name: name.value, scope: scope.value, allowed_from: allowed });
    showOnce($('new-key-slot'), {
      title: `Key "${k.name}" created (${k.scope})`,
      label: 'The new key',
      value: k.key,
      fieldId: 'new-key',
      warning: 'Copy it now and keep it somewhere safe: you will not see it again. '
        + 'Mailroom stores only its hash; if it is lost, revoke it and create another.',
    });
    form.reset();
    say(`Created key "${k.name}". Copy it now: it is shown only this once.`);
    await load();
  });
  return form;
}

// load lists the keys.
async function load() {
  const { items } = await api('GET', '/api/keys');
  const body = $('keys-body');
  if (!body) return; // the operator left the view
  body.replaceChildren(...items.map((k) => row(k, items)));
  $('keys-empty').hidden = items.length > 0;
}

// consoleUses reports whether k is the key this console is using: the console's
// key starts with k's prefix (a stored key's first characters).
function consoleUses(k) {
  return k.prefix !== '' && keyInUse().startsWith(k.prefix);
}

function row(k, all) {
  const tr = el('tr');
  tr.id = 'key-' + k.id;
  if (k.revoked_at) tr.className = 'revoked';
  const name = el('td', k.name, 'name');
  if (consoleUses(k)) name.append(' ', el('span', 'this console', 'tag'));
  const created = el('td');
  created.append(time(k.created_at));
  const status = el('td', null, 'status');
  if (k.revoked_at) status.append(badge('revoked'), ' ', time(k.revoked_at));
  else status.append(badge('active'));
  const actions = el('td', null, 'actions');
  if (!k.revoked_at) actions.append(button('Revoke', `Revoke key ${k.name}`, () => revoke(k, all)));
  tr.append(name, el('td', k.prefix + '…', 'prefix'), el('td', k.scope),
    el('td', k.allowed_from.length ? k.allowed_from.join(', ') : 'anyone', 'senders'), created, status, actions);
  return tr;
}

// revoke revokes k once the operator agrees to what it does, said plainly when it
// is the last admin key or the console's own.
async function revoke(k, all) {
  const mine = consoleUses(k);
  const warnings = revokeWarnings(k, all, mine);
  const detail = ['Whatever uses it is refused (401) from its next request. A revoked key cannot be restored.',
    ...warnings].join(' ');
  const question = warnings.length ? `Revoke key "${k.name}"? Read this first.` : `Revoke key "${k.name}"?`;
  if (!await ask(question, 'Revoke', detail)) return;
  await api('DELETE', `/api/keys/${encodeURIComponent(k.id)}`);
  if (mine) {
    $('forget-key').click(); // as the operator would: the console drops the key and asks for one
    say(`Revoked key "${k.name}", which this console was using: it has forgotten it. Enter another admin key.`);
    return;
  }
  say(`Revoked key "${k.name}".`);
  await load();
}

// revokeWarnings says what revoking k does beyond the key itself. The console can
// tell whether its own key is stored (listed) or one of auth.api_keys (not listed:
// those stay when every stored admin key is revoked).
function revokeWarnings(k, all, mine) {
  const out = [];
  const activeAdmins = all.filter((x) => x.scope === 'admin' && !x.revoked_at);
  const consoleKeyListed = all.some((x) => !x.revoked_at && consoleUses(x));
  if (k.scope === 'admin' && activeAdmins.length === 1 && activeAdmins[0].id === k.id) {
    if (consoleKeyListed) {
      out.push('It is the last admin key: once it is revoked, no key can manage keys, webhooks or dead letters '
        + '(unless auth.api_keys in the server\'s configuration holds one). '
        + `The API can then be administered only from the server, with the mailroom CLI: ${cliCreate}.`);
    } else {
      out.push('It is the last stored admin key: after it, only the keys of auth.api_keys in the server\'s '
        + `configuration (such as the one this console uses) can administer the API, or the mailroom CLI on the server: ${cliCreate}.`);
    }
  }
  if (mine) out.push('This console is using it: the console forgets it and asks for another key.');
  return out;
}
