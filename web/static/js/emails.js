// The emails: the list with its search (#/emails?recipient=jane@example.com&status=dead),
// and one email's page (#/emails/<id>): its status, recipients, timeline, the
// message as rendered, and what an operator can do with it (replay, cancel,
// reschedule).
//
// The search lives in the URL, so Back, a bookmark and a link from another view
// all land on the same list. An email's HTML body is the one piece of API data
// that becomes markup: sanitised by DOMPurify (scripts, handlers, forms and every
// URL that is not data: removed), then shown in a sandboxed frame with no
// scripts and an opaque origin, under the page's content security policy.
import {
  api, apiText, ask, badge, button, el, every, field, fromLocalInput, go, input, labelled, onSubmit, run, say, submitButton, table, time,
  toLocalInput,
} from './core.js';

// STATUSES are the email statuses of the API, in the order of an email's life.
const STATUSES = ['scheduled', 'queued', 'retrying', 'sent', 'dead', 'cancelled'];

// FILTERS are the list's search parameters, as GET /api/emails and the URL name them.
const FILTERS = ['recipient', 'subject', 'tag', 'status', 'created_after', 'created_before'];

// PAGE is how many emails a page of the list shows.
const PAGE = 25;

// ---------------------------------------------------------------------------
// The list: #/emails, with the search in the query part of the hash.

export const emails = {
  route: /^emails(?:\?(.*))?$/,
  show(root, match) {
    const query = searchOf(new URLSearchParams(match[1] || ''));
    const form = searchForm(query);
    const counts = el('ul', null, 'email-counts');
    counts.id = 'email-counts';
    counts.setAttribute('aria-label', 'Emails by status for this search');
    const list = table('Emails, newest first', ['Created', 'From', 'To', 'Subject', 'Status'],
      { id: 'emails', empty: 'No emails match.' });
    const more = button('Load more', 'Load more emails', () => listing.next());
    more.id = 'emails-more';
    more.hidden = true;
    root.append(el('h2', 'Emails'), form, counts, list.wrap, list.empty, more);

    const listing = pager(query, list.body, list.empty, more);
    run(null, () => Promise.all([listing.first(), drawCounts(counts, query)]));
  },
};

// searchOf keeps the search parameters the list knows, non-empty, in FILTERS order.
function searchOf(params) {
  const out = new URLSearchParams();
  for (const name of FILTERS) {
    const v = (params.get(name) || '').trim();
    if (v) out.set(name, v);
  }
  return out;
}

// searchPath is the view's path for a search: emails or emails?<query>.
function searchPath(query) {
  const q = query.toString();
  return 'emails' + (q ? '?' + q : '');
}

// searchForm is the search, filled from query; submitting it puts the new search
// in the URL (a new history entry), which draws the list again.
function searchForm(query) {
  const form = el('form', null, 'email-search');
  form.id = 'email-search';
  form.setAttribute('role', 'search');
  const search = (id, name, more) => input({ id, type: 'search', value: query.get(name) || '', ...more });
  const recipient = search('search-recipient', 'recipient', { placeholder: 'jane@example.com', inputMode: 'email' });
  const subject = search('search-subject', 'subject');
  const tag = search('search-tag', 'tag');
  const status = el('select');
  status.id = 'search-status';
  status.append(new Option('any', ''));
  for (const s of STATUSES) status.append(new Option(s, s));
  status.value = query.get('status') || '';
  const after = input({ id: 'search-after', type: 'datetime-local', value: toLocalInput(query.get('created_after')) });
  const before = input({ id: 'search-before', type: 'datetime-local', value: toLocalInput(query.get('created_before')) });
  form.append(field('Recipient', recipient), field('Subject contains', subject), field('Tag', tag),
    field('Status', status), field('Created from', after), field('Created before', before));
  const clear = el('a', 'Clear', 'clear');
  clear.href = '#/emails';
  const actions = el('div', null, 'row');
  actions.append(submitButton('Search'), clear);
  form.append(actions);
  onSubmit(form, async () => {
    const next = new URLSearchParams();
    for (const [name, control] of [['recipient', recipient], ['subject', subject], ['tag', tag],
      ['status', status]]) {
      if (control.value.trim()) next.set(name, control.value.trim());
    }
    if (after.value) next.set('created_after', fromLocalInput(after.value, 'Created from'));
    if (before.value) next.set('created_before', fromLocalInput(before.value, 'Created before'));
    go(searchPath(next)); // the same search again: listed anew
  });
  return form;
}

// pager lists the emails of query into body, a page at a time: first() the first
// page, next() appends the one after.
function pager(query, body, empty, more) {
  let cursor = '';
  const load = async (append) => {
    const params = new URLSearchParams(query);
    params.set('limit', String(PAGE));
    if (append && cursor) params.set('cursor', cursor);
    const page = await api('GET', '/api/emails?' + params);
    if (!body.isConnected) return; // the operator left the view
    if (!append) body.replaceChildren();
    for (const e of page.items) body.append(emailRow(e));
    cursor = page.next_cursor || '';
    more.hidden = !cursor;
    empty.hidden = body.rows.length > 0;
  };
  return { first: () => load(false), next: () => load(true) };
}

// emailRow is one email of the list; its subject links to the email's page.
function emailRow(e) {
  const tr = el('tr');
  const created = el('td', null, 'when');
  created.append(time(e.created_at));
  const subject = el('td', null, 'subject');
  const a = el('a', e.subject || '(no subject)');
  a.href = '#/emails/' + encodeURIComponent(e.id);
  a.setAttribute('aria-label', `${e.subject || '(no subject)'}, ${e.status}, email ${e.id}`);
  subject.append(a);
  const status = el('td');
  status.append(badge(e.status));
  const to = [...(e.to || []), ...(e.cc || [])];
  status.className = 'status';
  tr.append(created, el('td', e.from, 'address from'), el('td', to.join(', '), 'address to'), subject, status);
  return tr;
}

// drawCounts shows how many emails of the search are in each status, each a link
// to the search narrowed to it; the counts ask in parallel, one COUNT each.
async function drawCounts(list, query) {
  const base = new URLSearchParams(query);
  base.delete('status');
  const countOf = async (status) => {
    const params = new URLSearchParams(base);
    if (status) params.set('status', status);
    params.set('include_total', 'true');
    params.set('limit', '1');
    return (await api('GET', '/api/emails?' + params)).total;
  };
  const names = ['', ...STATUSES];
  const totals = await Promise.all(names.map(countOf));
  if (!list.isConnected) return;
  list.replaceChildren(...names.map((status, i) => {
    const li = el('li');
    li.dataset.status = status || 'all';
    const target = new URLSearchParams(base);
    if (status) target.set('status', status);
    const a = el('a');
    a.href = '#/' + searchPath(searchOf(target));
    if ((query.get('status') || '') === status) a.setAttribute('aria-current', 'true');
    a.append(badge(status || 'all'), ' ', el('span', totals[i], 'count'));
    li.append(a);
    return li;
  }));
}

// ---------------------------------------------------------------------------
// One email's page: #/emails/<id>.

// email is one email's page. While the email may still change it is looked up
// again: every second while on its way or dead (a replay from elsewhere moves it),
// every five while it waits (see waits).
export const email = {
  route: /^emails\/([^/?]+)$/,
  show(root, match) {
    const id = decodeURIComponent(match[1]);
    const page = emailPage(id);
    root.append(page.node);
    page.heading.scrollIntoView({ block: 'start' });
    return page.follow();
  },
};

// emailPage builds the page's parts, empty, and returns them with follow, which
// fills them and keeps them current until the stop it returns is called.
function emailPage(id) {
  const heading = el('h2', 'Email ' + id);
  heading.id = 'email-heading';
  const subject = el('p', '', 'email-subject');
  subject.id = 'email-subject';
  const summary = el('dl', null, 'email-summary');
  const actions = el('div', null, 'email-actions');
  actions.id = 'email-actions';
  const letter = el('div', null, 'email-letter');
  letter.id = 'email-letter';
  letter.hidden = true;
  const recipients = table('Recipients and their outcomes', ['Address', 'Type', 'Status', 'Attempts', 'Detail'],
    { id: 'email-recipients' });
  const events = el('ol', null, 'timeline');
  events.id = 'email-events';
  const message = el('section', null, 'email-message');
  message.setAttribute('aria-labelledby', 'email-message-heading');
  const node = el('article', null, 'email-page');
  node.append(heading, subject, summary, actions, letter, h3('Recipients'), recipients.wrap,
    h3('Timeline'), events, message);

  const state = { id, email: null, drawn: '', settled: false, ticks: 0, letterFor: '', gone: false };
  const refresh = async () => {
    const e = await api('GET', `/api/emails/${encodeURIComponent(id)}`);
    if (!node.isConnected) return;
    const first = state.email === null;
    state.email = e;
    state.settled = ['sent', 'cancelled'].includes(e.status) && !hasFailed(e);
    // Drawn again only when it changed: a link the operator is on keeps its focus.
    const version = [e.status, e.updated_at, e.attempts, (e.events || []).length].join(' ');
    if (state.drawn !== version) {
      state.drawn = version;
      drawSummary(summary, subject, e);
      recipients.body.replaceChildren(...(e.recipients || []).map(recipientRow));
      events.replaceChildren(...(e.events || []).map(eventItem));
    }
    drawActions(actions, e, state, refresh);
    if (first) drawMessage(message, e);
    await drawLetter(letter, e, state, refresh);
  };
  const follow = () => every(1000, async () => {
    if (state.gone || state.settled) return;
    if (waits(state.email) && state.ticks++ % 5 !== 0) return;
    try {
      await refresh();
    } catch (e) {
      if (e.status !== 404) throw e;
      state.gone = true;
      say(`No email ${id}: ${e.message}`, true);
    }
  });
  return { node, heading, follow };
}

function h3(text, id) {
  const h = el('h3', text);
  if (id) h.id = id;
  return h;
}

// waits reports whether e is waiting on a clock or an operator rather than on
// its way: scheduled, or sent with a failed recipient's letter parked. Such an
// email is looked up every five seconds rather than every second.
function waits(e) {
  return Boolean(e) && (e.status === 'scheduled' || (e.status === 'sent' && hasFailed(e)));
}

// hasFailed reports whether a recipient failed: its letter is parked, and a
// replay may still change the email.
function hasFailed(e) {
  return (e.recipients || []).some((r) => r.status === 'failed');
}

// drawSummary shows what the email is: status, people, times and tries.
function drawSummary(dl, subject, e) {
  subject.textContent = e.subject;
  const to = ((e.recipients || [])[0] || {}).address || (e.to || [])[0];
  const others = el('a', to ? `Other emails to ${to}` : 'All emails', 'others');
  others.href = '#/' + searchPath(to ? new URLSearchParams({ recipient: to }) : new URLSearchParams());
  const status = badge(e.status);
  status.id = 'email-status';
  const rows = [
    ['Status', status],
    ['Outcome', e.outcome || '—'],
    ['From', e.from],
    ['To', (e.to || []).join(', ')],
  ];
  if ((e.cc || []).length) rows.push(['Cc', e.cc.join(', ')]);
  const bcc = (e.recipients || []).filter((r) => r.type === 'bcc').map((r) => r.address);
  if (bcc.length) rows.push(['Bcc', bcc.join(', ')]);
  if (e.reply_to) rows.push(['Reply-To', e.reply_to]);
  if ((e.tags || []).length) rows.push(['Tags', e.tags.join(', ')]);
  const meta = Object.entries(e.metadata || {});
  if (meta.length) rows.push(['Metadata', meta.map(([k, v]) => `${k}=${v}`).join(', ')]);
  rows.push(['Created', time(e.created_at)]);
  if (e.send_at) rows.push(['Send at', time(e.send_at)]);
  if (e.sent_at) rows.push(['Sent', time(e.sent_at)]);
  rows.push(['Attempts', String(e.attempts)]);
  if (e.next_attempt_at) rows.push(['Next attempt', time(e.next_attempt_at)]);
  rows.push(['Last error', e.last_error || '—']);
  dl.replaceChildren();
  rows.push(['Search', others]);
  for (const [name, value] of rows) {
    const dd = el('dd');
    dd.append(value);
    dl.append(el('dt', name), dd);
  }
}

function recipientRow(r) {
  const tr = el('tr');
  const status = el('td');
  status.append(badge(r.status));
  tr.append(el('td', r.address, 'address'), el('td', r.type), status, el('td', r.attempts),
    el('td', r.detail || '—', 'detail'));
  return tr;
}

function eventItem(ev) {
  const li = el('li');
  li.dataset.type = ev.type;
  li.append(time(ev.at), ' ', el('strong', ev.type));
  if (ev.detail) li.append(': ', ev.detail);
  return li;
}

// drawActions offers what can be done to the email now: a scheduled one can be
// cancelled or moved. The controls are drawn again only when the status changes,
// so a time being typed is not wiped by the next look-up.
function drawActions(box, e, state, refresh) {
  if (box.dataset.status === e.status) return;
  box.dataset.status = e.status;
  box.replaceChildren();
  if (e.status !== 'scheduled') return;
  const cancel = button('Cancel email', `Cancel email ${e.id}`, async () => {
    if (!await ask('Cancel this scheduled email?', 'Cancel email', 'It will never be sent; this cannot be undone.')) return;
    await api('POST', `/api/emails/${encodeURIComponent(e.id)}/cancel`);
    say('Email cancelled.');
    state.settled = false;
    await refresh();
  });
  cancel.id = 'email-cancel';
  const when = input({ id: 'email-send-at', type: 'datetime-local', required: true, value: toLocalInput(e.send_at) });
  const form = el('form', null, 'row');
  form.id = 'email-reschedule';
  form.append(...labelled('New send time', when), submitButton('Reschedule'));
  onSubmit(form, async () => {
    await api('PATCH', `/api/emails/${encodeURIComponent(e.id)}`, { send_at: fromLocalInput(when.value, 'New send time') });
    say(`Rescheduled for ${new Date(when.value).toLocaleString()}.`);
    box.dataset.status = ''; // draw the form again with the new time
    await refresh();
  });
  box.append(form, cancel);
}

// drawLetter shows the email's dead letter, when it has one, with a Replay button
// while it is parked. It asks for the letter once per status (GET
// /api/dead-letters/{email id} names the email's latest letter).
async function drawLetter(box, e, state, refresh) {
  const key = e.status + (hasFailed(e) ? '+failed' : '');
  if (state.letterFor === key) return;
  state.letterFor = key;
  if (e.status !== 'dead' && !hasFailed(e)) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const l = await api('GET', `/api/dead-letters/${encodeURIComponent(e.id)}`);
  if (!box.isConnected) return;
  box.replaceChildren(el('h3', 'Dead letter'));
  const p = el('p', null, 'reason');
  p.append(badge(l.status), ' ', l.reason || '', l.error_class ? ` (${l.error_class})` : '');
  box.append(p);
  if (l.status === 'parked') {
    const replay = button('Replay', `Replay email ${e.id}`, async () => {
      await api('POST', `/api/dead-letters/${encodeURIComponent(e.id)}/replay`);
      say(`Replay queued for email ${e.id}.`);
      state.settled = false;
      state.ticks = 0;
      await refresh();
    });
    replay.id = 'email-replay';
    box.append(replay);
  }
  box.hidden = false;
}

// ---------------------------------------------------------------------------
// The message: HTML, text and raw source in tabs, and the attachments.

// drawMessage builds the message's tabs. The raw source is asked for only when
// its tab is opened: it exists once the first try rendered the email.
function drawMessage(section, e) {
  const heading = h3('Message', 'email-message-heading');
  const tabs = el('div', null, 'tabs');
  tabs.id = 'email-tabs';
  tabs.setAttribute('role', 'tablist');
  tabs.setAttribute('aria-labelledby', 'email-message-heading');
  const panels = [
    ['html', 'HTML', () => htmlPanel(e.html)],
    ['text', 'Text', () => textPanel(e.text)],
    ['raw', 'Raw', () => rawPanel(e)],
  ];
  const buttons = [];
  const parts = [];
  for (const [name, label, build] of panels) {
    const tab = el('button', label, 'tab');
    tab.type = 'button';
    tab.id = 'email-tab-' + name;
    tab.setAttribute('role', 'tab');
    tab.setAttribute('aria-controls', 'email-' + name);
    const panel = el('div', null, 'tab-panel');
    panel.id = 'email-' + name;
    panel.setAttribute('role', 'tabpanel');
    panel.setAttribute('aria-labelledby', tab.id);
    panel.tabIndex = 0;
    let filled = 'no'; // or 'filling', 'yes'; a failure or "not yet" is asked again next time
    tab.addEventListener('click', () => {
      select(buttons, parts, tab);
      if (filled !== 'no') return;
      filled = 'filling';
      run(null, async () => {
        try {
          const content = await build();
          panel.replaceChildren(content);
          filled = content.classList.contains('not-yet') ? 'no' : 'yes';
        } catch (err) {
          filled = 'no';
          throw err;
        }
      });
    });
    buttons.push(tab);
    parts.push(panel);
    tabs.append(tab);
  }
  tabs.addEventListener('keydown', (ev) => arrowKeys(ev, buttons));
  section.replaceChildren(heading, tabs, ...parts, attachmentsOf(e));
  (e.html ? buttons[0] : buttons[1]).click();
}

// select shows the panel of tab and hides the others (ARIA tabs: the chosen tab
// is the one in the Tab order, arrows move between them).
function select(buttons, panels, tab) {
  buttons.forEach((b, i) => {
    const on = b === tab;
    b.setAttribute('aria-selected', String(on));
    b.tabIndex = on ? 0 : -1;
    panels[i].hidden = !on;
  });
}

function arrowKeys(ev, buttons) {
  const at = buttons.indexOf(document.activeElement);
  if (at < 0) return;
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: buttons.length - 1 }[ev.key];
  if (to === undefined) return;
  ev.preventDefault();
  const next = buttons[(to + buttons.length) % buttons.length];
  next.focus();
  next.click();
}

// htmlPanel shows the HTML body as a mail client would, inert: sanitised, in a
// frame sandboxed with no permission at all (no scripts, an opaque origin, no
// forms, popups or navigation of the page), with a note of what was left out.
function htmlPanel(html) {
  const box = el('div');
  if (!html) {
    box.append(el('p', 'This email has no HTML part.', 'hint'));
    return box;
  }
  const clean = sanitise(html);
  const notes = [];
  if (clean.remote) notes.push(`${clean.remote} remote image${clean.remote === 1 ? '' : 's'} not loaded`);
  if (clean.inline) notes.push(`${clean.inline} inline image${clean.inline === 1 ? '' : 's'} (cid:) not shown`);
  if (clean.resources) notes.push(`${clean.resources} web font${clean.resources === 1 ? '' : 's'} or style sheet${clean.resources === 1 ? '' : 's'} not loaded`);
  if (notes.length) {
    const note = el('p', notes.join(' · '), 'hint blocked');
    note.id = 'email-blocked';
    box.append(note);
  }
  const frame = el('iframe', null, 'email-frame');
  frame.setAttribute('sandbox', '');
  frame.setAttribute('referrerpolicy', 'no-referrer');
  frame.title = 'The email\'s HTML part, without scripts or remote content';
  frame.srcdoc = clean.html;
  box.append(frame);
  if (clean.links.length) box.append(linksOf(clean.links));
  return box;
}

// linksOf lists where the email's links point, as text: in the frame they are
// inert, and an operator may want to see a tracking link's address.
function linksOf(links) {
  const details = el('details', null, 'email-links');
  details.append(el('summary', `${links.length} link${links.length === 1 ? '' : 's'} (not followed in the preview)`));
  const ul = el('ul');
  for (const href of links) ul.append(el('li', href));
  details.append(ul);
  return details;
}

function textPanel(text) {
  if (!text) return el('p', 'This email has no text part.', 'hint');
  return el('pre', text, 'email-text');
}

// rawPanel shows the message exactly as handed to the transport, headers and
// all; an email not yet rendered has none.
async function rawPanel(e) {
  const notYet = () => el('p', 'Not rendered yet: the raw message exists once the email\'s first try has rendered it.', 'hint not-yet');
  if (e.status === 'scheduled' || e.status === 'cancelled') return notYet();
  try {
    return el('pre', await apiText(`/api/emails/${encodeURIComponent(e.id)}/raw`), 'email-raw');
  } catch (err) {
    if (err.status === 404) return notYet();
    throw err;
  }
}

function attachmentsOf(e) {
  const box = el('div', null, 'attachments');
  box.append(el('h4', 'Attachments'));
  const files = e.attachments || [];
  if (!files.length) {
    box.append(el('p', 'None.', 'hint'));
    return box;
  }
  const ul = el('ul');
  ul.id = 'email-attachments';
  for (const a of files) {
    const li = el('li');
    li.append(el('span', a.filename, 'filename'), ` ${a.content_type}, ${size(a.size)}`);
    if (a.content_id) li.append(` (inline, cid:${a.content_id})`);
    ul.append(li);
  }
  box.append(ul);
  return box;
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// ---------------------------------------------------------------------------
// The sanitiser of an email's HTML body.

// FRAME_POLICY heads the frame's document: a policy of its own, stricter than the
// page's it also inherits, so that even a URL the sanitiser missed loads nothing
// but a data: image.
const FRAME_POLICY = '<!doctype html><meta http-equiv="Content-Security-Policy" ' +
  'content="default-src \'none\'; img-src data:; style-src \'unsafe-inline\'">';

// URL_ATTRIBUTES are the attributes that make a browser fetch what they name.
const URL_ATTRIBUTES = ['src', 'srcset', 'background', 'poster', 'lowsrc', 'dynsrc', 'longdesc', 'data',
  'action', 'formaction', 'ping', 'manifest', 'codebase', 'cite', 'xlink:href'];

// URL_FUNCTION finds a CSS function that loads something.
const URL_FUNCTION = /(?:url|src|image-set|image|cross-fade|element)\(/i;

// CSS_STRING is a CSS string, quoted as the browser serialises it.
const CSS_STRING = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g;

let purifier = null; // our own DOMPurify instance: the hooks below stay ours
let removed = null; // what the sanitise in progress removed

// sanitise returns html safe to show in the sandboxed frame, and how many remote
// images, inline (cid:) images, fonts or style sheets (@font-face, @import) it
// took out, and the addresses of the links it made inert. It keeps the email's own
// styles, both <style> and style=, minus what would load from elsewhere.
function sanitise(html) {
  if (!purifier) purifier = makePurifier();
  removed = { remote: 0, inline: 0, links: [], resources: 0 };
  const out = purifier.sanitize(disarm(html), {
    USE_PROFILES: { html: true }, // no SVG or MathML: fewer ways to name a URL
    WHOLE_DOCUMENT: true, // keeps the <style> of the <head>
    FORBID_TAGS: ['form', 'input', 'button', 'textarea', 'select', 'option', 'optgroup', 'fieldset', 'label',
      'video', 'audio', 'source', 'track', 'picture', 'link', 'meta', 'base', 'iframe', 'frame', 'frameset',
      'object', 'embed', 'applet', 'portal', 'template'],
    FORBID_ATTR: ['action', 'formaction', 'ping', 'target'],
    ALLOW_DATA_ATTR: false,
  });
  return { html: FRAME_POLICY + out, ...removed };
}

// START_TAG is a start tag, its attributes quoted or not; ATTRIBUTE_OR_VALUE
// finds, inside one, a quoted value (left alone) or an event handler's name.
const START_TAG = /<[a-z][^\s/>]*(?:[^>"']|"[^"]*"|'[^']*')*>/gi;
const ATTRIBUTE_OR_VALUE = /("[^"]*"|'[^']*')|([\s/])(on[^\s/=>]*)/gi;

// disarm renames the event handler attributes of html (onerror= becomes
// data-disarmed-onerror=, which DOMPurify then drops) before anything parses it.
// Chromium checks the page's CSP when a parser sets a handler attribute, even in
// the inert document DOMPurify parses into, and reports a violation each time:
// without this, every email with an onclick would be a CSP report, and a real one
// would hide among them. A handler this misses is still removed by DOMPurify.
function disarm(html) {
  return html.replace(START_TAG, (tag) =>
    tag.replace(ATTRIBUTE_OR_VALUE, (m, quoted, before, name) => (quoted ? m : `${before}data-disarmed-${name}`)));
}

function makePurifier() {
  const p = window.DOMPurify(window);
  p.addHook('uponSanitizeElement', (node, data) => {
    if (data.tagName === 'style') cleanStyleElement(node);
  });
  p.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    if (node.hasAttribute('href')) unlink(node);
    for (const name of URL_ATTRIBUTES) {
      if (!node.hasAttribute(name)) continue;
      const value = node.getAttribute(name);
      if (name === 'src' && /^\s*data:image\//i.test(value)) continue;
      if (name === 'srcset' && isDataSrcset(value)) continue;
      node.removeAttribute(name);
      if (['src', 'srcset', 'background', 'poster', 'lowsrc', 'dynsrc'].includes(name)) {
        if (/^\s*cid:/i.test(value)) removed.inline++;
        else removed.remote++;
      }
    }
    if (node.hasAttribute('style')) cleanDeclarations(node.style, node);
  });
  return p;
}

// unlink keeps a link's text but not where it goes (a click in the frame must not
// leave it); the address is listed under the frame instead.
function unlink(node) {
  const href = node.getAttribute('href').trim();
  node.removeAttribute('href');
  if (href && !href.startsWith('#') && !removed.links.includes(href)) removed.links.push(href);
}

// isDataSrcset reports whether a srcset is one data: image candidate.
function isDataSrcset(value) {
  return /^\s*data:image\/[^\s,]*,[^\s,]*(\s+\d+(\.\d+)?[wx])?\s*$/i.test(value);
}

// cleanDeclarations removes from a declaration block every declaration that
// would load from anywhere but a data: URL, and every custom property and var()
// (one could carry a URL into another); it reads the block as the browser parsed it, escapes
// and comments resolved. owner, the element of a style attribute, gets the
// attribute back as the browser serialises what is left, or loses it.
function cleanDeclarations(style, owner) {
  for (let i = style.length - 1; i >= 0; i--) {
    const name = style[i];
    const value = style.getPropertyValue(name);
    if (name.startsWith('--') || /\bvar\(/i.test(value)) {
      style.removeProperty(name);
    } else if (loadsRemote(value)) {
      style.removeProperty(name);
      removed.remote++;
    }
  }
  if (!owner) return;
  // Written back as parsed: what this browser did not understand here, it would
  // not understand in the frame either, so it goes.
  if (style.length === 0) owner.removeAttribute('style');
  else style.cssText = style.cssText; // parsed, then written back as serialised
}

// loadsRemote reports whether a CSS value, as the browser serialises it (every
// URL a quoted string), names anything to load that is not a data: URL.
function loadsRemote(value) {
  if (!URL_FUNCTION.test(value)) return false;
  if (/url\(\s*[^\s"')]/i.test(value)) return true; // an unquoted URL: not how Chromium writes one
  return (value.match(CSS_STRING) || []).some((s) => !/^["']\s*data:image\//i.test(s));
}

// cleanStyleElement rewrites a <style> from its parsed rules, less the @import
// and @font-face ones (they load) and the declarations that would load; one the
// browser cannot parse here is dropped whole.
function cleanStyleElement(node) {
  const sheet = node.sheet;
  if (!sheet) {
    node.textContent = '';
    return;
  }
  cleanRules(sheet);
  const css = [...sheet.cssRules].map((r) => r.cssText).join('\n');
  node.textContent = css.replace(/<\//g, '<\\/'); // no "</style" can end it early
}

function cleanRules(group) {
  for (let i = group.cssRules.length - 1; i >= 0; i--) {
    const rule = group.cssRules[i];
    if (rule instanceof CSSImportRule || rule instanceof CSSFontFaceRule) {
      removed.resources++;
      group.deleteRule(i);
      continue;
    }
    if (rule.style) cleanDeclarations(rule.style, null);
    if (rule.cssRules) cleanRules(rule);
  }
}
