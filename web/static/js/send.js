// The Send a test email view (#/send): an operator checks the whole path, from
// the API to the SMTP server, with an email of their own, and follows it on its
// page. It calls POST /api/emails like any client; the API's answer to a bad
// field is shown on the status line, naming the field.
import { api, el, labelled, onSubmit, say } from './core.js';

export const send = {
  route: /^send$/,
  show(root) {
    const from = field('send-from', 'input');
    from.placeholder = 'smtp.from when empty';
    const to = field('send-to', 'input');
    to.required = true;
    to.placeholder = 'jane@example.com, joe@example.com';
    to.setAttribute('aria-describedby', 'send-to-hint');
    const toHint = el('p', 'One or more addresses, separated by commas.', 'hint');
    toHint.id = 'send-to-hint';
    const subject = field('send-subject', 'input');
    subject.value = 'A test from the Mailroom console';
    const text = field('send-text', 'textarea');
    text.rows = 5;
    text.value = 'This is a test email sent from the Mailroom console.';
    const html = field('send-html', 'textarea');
    html.rows = 5;
    html.placeholder = '<p>Optional HTML part</p>';

    const form = el('form', null, 'send-form');
    form.id = 'send-form';
    form.append(
      row(labelled('From', from)),
      row(labelled('To', to), toHint),
      row(labelled('Subject', subject)),
      row(labelled('Text', text)),
      row(labelled('HTML (optional)', html)));
    const submit = el('button', 'Send');
    submit.type = 'submit';
    form.append(submit);
    const result = el('p', null, 'send-result');
    result.id = 'send-result';
    result.setAttribute('aria-live', 'polite');
    onSubmit(form, async () => {
      const accepted = await api('POST', '/api/emails', requestOf(from, to, subject, text, html));
      shown(result, accepted);
      say(`Email ${accepted.id} accepted (${accepted.status}).`);
    });
    root.append(el('h2', 'Send a test email'), form, result);
  },
};

function field(id, tag) {
  const control = el(tag);
  control.id = id;
  control.spellcheck = tag === 'textarea';
  return control;
}

function row(parts, ...more) {
  const div = el('div', null, 'field');
  div.append(...parts, ...more);
  return div;
}

// requestOf is the body of POST /api/emails: only what the operator filled in,
// so that the API's own defaults (smtp.from) and checks apply.
function requestOf(from, to, subject, text, html) {
  const body = { to: to.value.split(/[,;\n]/).map((a) => a.trim()).filter(Boolean) };
  if (from.value.trim()) body.from = from.value.trim();
  if (subject.value) body.subject = subject.value;
  if (text.value) body.text = text.value;
  if (html.value) body.html = html.value;
  return body;
}

// shown says the email was accepted, with a link to its page.
function shown(result, accepted) {
  const a = el('a', accepted.id, 'id');
  a.id = 'send-link';
  a.href = '#/emails/' + encodeURIComponent(accepted.id);
  result.replaceChildren('Accepted: ', a, ` (${accepted.status}). Open it to watch it go.`);
}
