// What every view of the Mailroom console shares: the API client, the few DOM
// builders, the status line and the key.
//
// Everything the API returns may be hostile (subjects, SMTP replies, reasons come
// from outside), so it is put on the page with textContent and DOM nodes only,
// never innerHTML. The one exception is an email's HTML body, shown in a sandboxed
// frame (emails.js). The API key stays in sessionStorage: this tab, until it closes.

const KEY = 'mailroom.apiKey';

export const $ = (id) => document.getElementById(id);

// hasKey reports whether an API key is set in this tab.
export function hasKey() {
  return keyInUse() !== '';
}

// keyInUse returns the key this tab uses ("" for none): the keys view tells by its
// first characters which listed key is the console's own.
export function keyInUse() {
  return sessionStorage.getItem(KEY) || '';
}

// useKey keeps key for this tab, or forgets it when key is empty.
export function useKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

// request calls the API with the key and returns the Response of a 2xx answer. A
// failure throws an Error whose message is the API's own: "401 unauthorized:
// missing or invalid API key".
async function request(method, path, body) {
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
  if (!resp.ok) {
    const data = await resp.json().catch(() => null);
    const err = (data && data.error) || {};
    const e = new Error(`${resp.status} ${err.code || resp.statusText}: ${err.message || 'no error message'}`);
    e.status = resp.status;
    throw e;
  }
  return resp;
}

// api calls the API and returns the decoded JSON answer (null for 204).
export async function api(method, path, body) {
  const resp = await request(method, path, body);
  if (resp.status === 204) return null;
  return resp.json();
}

// apiText calls the API and returns the answer's body as text (a raw message).
export async function apiText(path) {
  const resp = await request('GET', path);
  return resp.text();
}

// say shows text on the status line, which a screen reader announces.
export function say(text, isError = false) {
  const m = $('message');
  m.textContent = text;
  m.classList.toggle('error', isError);
}

// run runs an action for a button or form, keeping the button disabled meanwhile
// and showing any failure on the status line.
export async function run(button, action) {
  if (button) button.disabled = true;
  try {
    await action();
  } catch (e) {
    say(e.message, true);
  } finally {
    if (button) button.disabled = false;
  }
}

// el makes an element with text (as text, never markup) and a class.
export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

// time makes a <time> showing iso in the operator's locale.
export function time(iso) {
  const t = el('time', iso ? new Date(iso).toLocaleString() : '');
  if (iso) t.dateTime = iso;
  return t;
}

// badge shows a status (of an email, a recipient, a dead letter, a webhook
// delivery or endpoint, a key) as the word on a coloured ground, the same colour
// for the same status in every view (.badge.s-<status> in style.css). The colour
// only repeats the word.
export function badge(status) {
  return el('span', status, 'badge s-' + status);
}

// button makes a button whose click runs onClick through run; ariaLabel names it
// for a screen reader when the label alone is ambiguous (a "Replay" on each row).
export function button(label, ariaLabel, onClick) {
  const b = el('button', label);
  b.type = 'button';
  if (ariaLabel) b.setAttribute('aria-label', ariaLabel);
  b.addEventListener('click', () => run(b, () => onClick(b)));
  return b;
}

// submitButton makes the submit button of a form: onSubmit runs the form's action
// when it is pressed, and keeps it disabled meanwhile.
export function submitButton(label) {
  const b = el('button', label);
  b.type = 'submit';
  return b;
}

// control makes a form control (tag input, select or textarea) with props set on
// it: its properties (id, type, placeholder, required, maxLength, value, rows...),
// or, for a name with a dash (aria-describedby), its attribute. What an operator
// types here is an address, an id, a key or a filter, never prose: spelling is not
// checked and the browser does not offer what was typed before, unless props say
// otherwise.
export function control(tag, props = {}) {
  const node = document.createElement(tag);
  node.spellcheck = false;
  node.autocomplete = 'off';
  for (const [name, value] of Object.entries(props)) {
    if (name.includes('-')) node.setAttribute(name, value);
    else node[name] = value;
  }
  return node;
}

// input makes an <input> as control does: input({ id: 'reason', type: 'search' }).
export function input(props) {
  return control('input', props);
}

let fields = 0; // numbers the ids that tie labels to their controls

// labelled returns [label, control] with the label tied to the control, so every
// control a view makes is named.
export function labelled(text, control) {
  if (!control.id) control.id = 'field-' + ++fields;
  const label = el('label', text);
  label.htmlFor = control.id;
  return [label, control];
}

// field keeps a control with its label in a div.field, so that a narrow window
// wraps them together: the label above the control, or beside it in a .row
// (style.css).
export function field(text, node) {
  const div = el('div', null, 'field');
  div.append(...labelled(text, node));
  return div;
}

// toLocalInput is iso as a datetime-local control shows it (the operator's time
// zone, to the minute), "" for none or a time it cannot read.
export function toLocalInput(iso) {
  const d = iso ? new Date(iso) : null;
  if (!d || Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// fromLocalInput is the value of a datetime-local control (the operator's time
// zone) as the API takes a time, RFC 3339 in UTC; one it cannot read throws an
// Error naming the control (name).
export function fromLocalInput(local, name = 'time') {
  const t = new Date(local);
  if (Number.isNaN(t.getTime())) throw new Error(`${name}: not a time`);
  return t.toISOString().replace(/\.000Z$/, 'Z');
}

// onSubmit runs action when form is submitted, with its submit button disabled
// meanwhile; the page does not navigate.
export function onSubmit(form, action) {
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run(form.querySelector('button[type=submit]'), action);
  });
}

// every calls fn now and then every ms milliseconds until the returned function
// is called (a view's teardown), never two at once, skipping while the tab is
// hidden. A failure shows on the status line and the polling goes on.
export function every(ms, fn) {
  let stopped = false;
  let timer = 0;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) await run(null, fn);
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

let pendingNote = ''; // what the last go asked to say once its view is drawn

// go opens the view of a hash path ("emails/<id>"), or draws the one shown again
// when path is its own. The router clears the status line whenever the view
// changes: note, when given, is said once the new view is drawn, so that a view
// can act, move on and still say how the action went.
export function go(path, note = '') {
  pendingNote = note;
  const hash = '#/' + path;
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = hash;
}

// takeNote returns the note of the last go ("" for none) and forgets it: the
// router says it after drawing the view.
export function takeNote() {
  const note = pendingNote;
  pendingNote = '';
  return note;
}

// table makes a scrollable table with a caption (for screen readers) and column
// headers; an empty header is an actions column, named for screen readers only.
// It returns the wrapper to place and the <tbody> to fill. With list.id the table
// has that id and its <tbody> id-body; with list.empty it returns empty too, a
// hidden paragraph id-empty saying list.empty, for the view to place after the
// wrapper and show when no row matches.
export function table(caption, headers, list = {}) {
  const t = el('table');
  t.append(el('caption', caption, 'visually-hidden'));
  const head = el('tr');
  for (const h of headers) {
    const th = el('th', h || null);
    th.scope = 'col';
    if (!h) th.append(el('span', 'Actions', 'visually-hidden'));
    head.append(th);
  }
  const thead = el('thead');
  thead.append(head);
  const body = el('tbody');
  t.append(thead, body);
  const wrap = el('div', null, 'scroll');
  wrap.append(t);
  let empty = null;
  if (list.id) {
    t.id = list.id;
    body.id = list.id + '-body';
  }
  if (list.empty) {
    empty = el('p', list.empty);
    if (list.id) empty.id = list.id + '-empty';
    empty.hidden = true;
  }
  return { wrap, table: t, body, empty };
}

// ask shows question in a modal dialog with a button labelled yes and Cancel,
// and resolves to whether the operator chose yes. A page dialog, not confirm():
// it is styled, keyboard reachable (Escape cancels) and can say more than a line.
export function ask(question, yes, detail) {
  return new Promise((resolve) => {
    const dialog = el('dialog', null, 'ask');
    dialog.setAttribute('aria-labelledby', 'ask-question');
    const q = el('p', question, 'question');
    q.id = 'ask-question';
    dialog.append(q);
    if (detail) dialog.append(el('p', detail, 'hint'));
    const ok = el('button', yes);
    ok.type = 'button';
    ok.className = 'primary';
    ok.id = 'ask-yes';
    const cancel = el('button', 'Cancel');
    cancel.type = 'button';
    cancel.id = 'ask-cancel';
    const row = el('div', null, 'row');
    row.append(ok, cancel);
    dialog.append(row);
    const done = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    ok.addEventListener('click', () => done(true));
    cancel.addEventListener('click', () => done(false));
    dialog.addEventListener('cancel', (ev) => {
      ev.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
