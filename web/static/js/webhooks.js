// The webhooks: the endpoints Mailroom POSTs email events to, signed, and what
// became of each delivery. The list (#/webhooks) adds endpoints; an endpoint's
// page (#/webhooks/<id>) shows its deliveries, replays one, disables, enables,
// rotates its secret or deletes it.
import { $, api, ask, badge, button, el, every, field, go, input, labelled, onSubmit, run, say, submitButton, table, time } from './core.js';
import { showOnce } from './shown-once.js';

// eventTypes are the event types an endpoint may subscribe to (EventType in
// web/openapi.yaml), with what each means.
const eventTypes = [
  ['email.accepted', 'accepted for delivery'],
  ['email.scheduled', 'scheduled for later'],
  ['email.cancelled', 'a scheduled email cancelled'],
  ['email.sent', 'handed to the mail server'],
  ['email.delivered', 'delivered to a recipient'],
  ['email.deferred', 'a try failed, retrying'],
  ['email.bounced', 'a recipient refused'],
  ['email.suppressed', 'a recipient skipped (suppressed)'],
  ['email.dead_lettered', 'given up on (dead letter)'],
  ['email.replayed', 'a dead letter replayed'],
];

// secretWarning is what the one showing of a signing secret says.
const secretWarning = 'Copy it now into the receiving service: you will not see it again. '
  + 'It verifies the webhook-signature header of each request (Standard Webhooks). '
  + 'If it is lost, rotate the secret to get a new one.';

// pollMs is how often an endpoint's page refreshes its deliveries.
const pollMs = 2000;

export const webhooks = {
  route: /^webhooks$/,
  show(root) {
    const created = el('div');
    created.id = 'new-secret-slot';
    const list = table('Webhook endpoints, oldest first', ['URL', 'Events', 'Status', 'Created'],
      { id: 'endpoints', empty: 'No webhook endpoints yet: add one below to have events POSTed to it.' });
    root.append(el('h2', 'Webhooks'), created, list.wrap, list.empty, createForm());
    run(null, loadEndpoints);
  },
};

// createForm makes the form that adds an endpoint.
function createForm() {
  const url = input({ id: 'webhook-url', type: 'url', required: true, placeholder: 'https://example.com/hooks/mailroom' });
  const description = input({ id: 'webhook-description', maxLength: 1024, placeholder: 'what it is for' });
  const fields = el('div', null, 'fields');
  fields.append(field('URL', url), field('Description', description));
  const events = el('fieldset', null, 'events');
  events.id = 'webhook-events';
  events.append(el('legend', 'Events to send'));
  for (const [type, meaning] of eventTypes) {
    const box = input({ type: 'checkbox', name: 'event', value: type });
    const [label] = labelled('', box);
    label.append(el('span', type, 'event-type'), el('span', meaning, 'hint'));
    label.prepend(box);
    events.append(label);
  }
  const form = el('form', null, 'webhook-create');
  form.id = 'webhook-create-form';
  form.autocomplete = 'off';
  form.append(el('h3', 'Add an endpoint'), fields, events, submitButton('Add endpoint'));
  onSubmit(form, async () => {
    const chosen = [...events.querySelectorAll('input:checked')].map((b) => b.value);
    if (chosen.length === 0) throw new Error('Choose at least one event to send.');
    const ep = await api('POST', '/api/webhooks', { url: url.value, events: chosen, description: description.value });
    showOnce($('new-secret-slot'), {
      title: `Endpoint added: ${ep.url}`, label: 'Its signing secret', value: ep.secret,
      fieldId: 'new-secret', warning: secretWarning,
    });
    form.reset();
    say(`Added the endpoint ${ep.url}. Copy its signing secret now: it is shown only this once.`);
    await loadEndpoints();
  });
  return form;
}

async function loadEndpoints() {
  const { items } = await api('GET', '/api/webhooks');
  const body = $('endpoints-body');
  if (!body) return; // the operator left the view
  body.replaceChildren(...items.map(endpointRow));
  $('endpoints-empty').hidden = items.length > 0;
}

function endpointRow(ep) {
  const tr = el('tr');
  const link = el('a', ep.url, 'url');
  link.href = '#/webhooks/' + encodeURIComponent(ep.id);
  const first = el('td');
  first.append(link);
  if (ep.description) first.append(el('div', ep.description, 'hint'));
  const created = el('td');
  created.append(time(ep.created_at));
  tr.append(first, el('td', ep.events.join(', '), 'events'), statusCell(ep), created);
  return tr;
}

// statusCell says whether the endpoint is enabled and, when not, why.
function statusCell(ep) {
  const td = el('td', null, 'status');
  td.append(badge(ep.enabled ? 'enabled' : 'disabled'));
  if (!ep.enabled && ep.disabled_reason) td.append(el('div', ep.disabled_reason, 'reason'));
  return td;
}

// shown is the endpoint an endpoint's page shows, how many deliveries, and what
// was drawn last.
let shown = { id: '', limit: 50, drawn: '' };

export const webhook = {
  route: /^webhooks\/([^/]+)$/,
  show(root, match) {
    const id = decodeURIComponent(match[1]);
    shown = { id, limit: 50, drawn: '' };
    const back = el('a', '← All webhooks', 'back');
    back.href = '#/webhooks';
    const heading = el('h2', 'Webhook endpoint', 'endpoint-url');
    heading.id = 'endpoint-heading';
    const facts = el('dl');
    facts.id = 'endpoint-facts';
    const secret = el('div');
    secret.id = 'new-secret-slot';
    const actions = el('div', null, 'row actions');
    actions.id = 'endpoint-actions';
    const deliveries = table('Deliveries to this endpoint, newest first',
      ['Event', 'Status', 'Tries', 'Last answer', 'Next try', 'Last change', ''],
      { id: 'deliveries', empty: 'No deliveries yet: events the endpoint subscribes to appear here as they happen.' });
    const more = button('Show more', null, () => {
      shown.limit = Math.min(shown.limit + 50, 500);
      return refresh();
    });
    more.id = 'more-deliveries';
    more.hidden = true;
    root.append(back, heading, facts, actions, secret, el('h3', 'Deliveries'), deliveries.wrap, deliveries.empty, more);
    return every(pollMs, refresh);
  },
};

// refresh redraws the endpoint and its newest deliveries.
async function refresh() {
  const id = shown.id;
  const [ep, page] = await Promise.all([
    api('GET', `/api/webhooks/${encodeURIComponent(id)}`),
    api('GET', `/api/webhooks/${encodeURIComponent(id)}/deliveries?limit=${shown.limit}`),
  ]);
  if (!$('deliveries-body') || shown.id !== id) return; // the operator left the page
  // Redrawn only when something changed, so that a poll does not take away the
  // operator's focus or text selection.
  const drawn = JSON.stringify([ep, page]);
  if (drawn === shown.drawn) return;
  shown.drawn = drawn;
  drawEndpoint(ep);
  drawDeliveries(ep, page);
}

// drawDeliveries fills the deliveries table; a Replay button that had the focus
// has it again in the new rows.
function drawDeliveries(ep, page) {
  const body = $('deliveries-body');
  const focused = body.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
  body.replaceChildren(...page.items.map((d) => deliveryRow(ep, d)));
  if (focused) {
    for (const b of body.querySelectorAll('button')) if (b.getAttribute('aria-label') === focused) b.focus();
  }
  $('deliveries-empty').hidden = page.items.length > 0;
  $('more-deliveries').hidden = !page.next_cursor || shown.limit >= 500;
}

function drawEndpoint(ep) {
  $('endpoint-heading').textContent = ep.url;
  const facts = [
    ['ID', ep.id],
    ['Description', ep.description || '—'],
    ['Events', ep.events.join(', ')],
  ];
  const dl = $('endpoint-facts');
  dl.replaceChildren();
  for (const [term, value] of facts) dl.append(el('dt', term), el('dd', value));
  const status = el('dd');
  status.append(badge(ep.enabled ? 'enabled' : 'disabled'));
  if (!ep.enabled && ep.disabled_reason) status.append(`: ${ep.disabled_reason}`);
  status.id = 'endpoint-status';
  const created = el('dd');
  created.append(time(ep.created_at));
  dl.append(el('dt', 'Status'), status, el('dt', 'Created'), created);
  drawActions(ep);
}

// drawActions makes the endpoint's buttons; a button keeps its place (and focus)
// while only its label changes.
function drawActions(ep) {
  const row = $('endpoint-actions');
  if (row.dataset.enabled === String(ep.enabled)) return;
  row.dataset.enabled = String(ep.enabled);
  const toggle = ep.enabled
    ? button('Disable', null, () => disable(ep))
    : button('Enable', null, () => enable(ep));
  toggle.id = 'toggle-endpoint';
  const rotate = button('Rotate secret', null, () => rotateSecret(ep));
  rotate.id = 'rotate-secret';
  const del = button('Delete', null, () => remove(ep));
  del.id = 'delete-endpoint';
  del.className = 'danger';
  const hadFocus = row.contains(document.activeElement) ? document.activeElement.id : '';
  row.replaceChildren(toggle, rotate, del);
  if (hadFocus) $(hadFocus).focus();
}

function deliveryRow(ep, d) {
  const tr = el('tr');
  tr.id = 'delivery-' + d.id;
  const event = el('td');
  event.append(el('div', d.event_type), el('div', d.event_id, 'id'));
  const status = el('td', null, 'status');
  status.append(badge(d.status));
  const next = el('td', null, 'next');
  if (d.next_attempt_at) next.append(time(d.next_attempt_at));
  else next.textContent = '—';
  const updated = el('td');
  updated.append(time(d.updated_at));
  const actions = el('td', null, 'actions');
  actions.append(button('Replay', `Replay delivery ${d.id}`, () => replay(ep, d)));
  tr.append(event, status, el('td', d.attempts, 'tries'), answerCell(d), next, updated, actions);
  return tr;
}

// answerCell shows the last try's answer: its status code and time, the start of
// its body, or the error that stopped it (no connection, a timeout).
function answerCell(d) {
  const td = el('td', null, 'answer');
  if (d.attempts === 0) {
    td.textContent = 'not tried yet';
    return td;
  }
  const head = [];
  if (d.last_status_code != null) head.push(`HTTP ${d.last_status_code}`);
  if (d.last_duration_ms != null) head.push(`in ${d.last_duration_ms} ms`);
  if (head.length) td.append(el('div', head.join(' '), 'code'));
  // An answer's error says only its code ("answered 500"), already shown.
  if (d.last_error && d.last_error !== `answered ${d.last_status_code}`) td.append(el('div', d.last_error, 'error'));
  if (d.last_response) td.append(el('pre', d.last_response, 'body'));
  return td;
}

async function replay(ep, d) {
  await api('POST', `/api/webhooks/${encodeURIComponent(ep.id)}/deliveries/${encodeURIComponent(d.id)}/replay`);
  say(ep.enabled
    ? `Delivery ${d.id} (${d.event_type}) is due again now.`
    : `Delivery ${d.id} is due again; it waits until the endpoint is enabled.`);
  await refresh();
}

async function disable(ep) {
  if (!await ask(`Disable the endpoint ${ep.url}?`, 'Disable',
    'While it is disabled, new events are not sent to it, not even later; deliveries already waiting '
    + 'wait until it is enabled again.')) return;
  await api('PATCH', `/api/webhooks/${encodeURIComponent(ep.id)}`, { enabled: false });
  say(`Disabled ${ep.url}.`);
  await refresh();
}

async function enable(ep) {
  await api('PATCH', `/api/webhooks/${encodeURIComponent(ep.id)}`, { enabled: true });
  say(`Enabled ${ep.url}: its waiting deliveries are tried again.`);
  await refresh();
}

async function rotateSecret(ep) {
  if (!await ask(`Rotate the signing secret of ${ep.url}?`, 'Rotate secret',
    'The old secret stops at once: from the next request on, requests are signed with the new one only, '
    + 'so the receiver rejects them until it has the new secret.')) return;
  const { secret } = await api('POST', `/api/webhooks/${encodeURIComponent(ep.id)}/rotate-secret`);
  showOnce($('new-secret-slot'), {
    title: 'New signing secret', label: 'The new signing secret', value: secret,
    fieldId: 'new-secret', warning: secretWarning,
  });
  say(`Rotated the secret of ${ep.url}. Copy the new one now: it is shown only this once.`);
}

async function remove(ep) {
  if (!await ask(`Delete the endpoint ${ep.url}?`, 'Delete',
    'It gets no more events, and its deliveries and their history are deleted with it.')) return;
  await api('DELETE', `/api/webhooks/${encodeURIComponent(ep.id)}`);
  go('webhooks', `Deleted the endpoint ${ep.url}.`);
}
