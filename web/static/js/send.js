// The Send a test email view (#/send): an operator checks the whole path, from
// the API to the SMTP server, with an email of their own, and follows it on its
// page. It calls POST /api/emails like any client; the API's answer to a bad
// field is shown on the status line, naming the field.
import { api, control, el, field, input, onSubmit, say, submitButton } from './core.js';

export const send = {
  route: /^send$/,
  show(root) {
    const from = input({ id: 'send-from', placeholder: 'smtp.from when empty' });
    const to = input({ id: 'send-to', required: true, placeholder: 'jane@example.com, joe@example.com',
      'aria-describedby': 'send-to-hint' });
    const toHint = el('p', 'One or more addresses, separated by commas.', 'hint');
    toHint.id = 'send-to-hint';
    const toField = field('To', to);
    toField.append(toHint);
    const subject = input({ id: 'send-subject', value: 'A test from the Mailroom console' });
    // The body is prose: its spelling is checked.
    const text = control('textarea', { id: 'send-text', rows: 5, spellcheck: true,
      value: 'This is a test email sent from the Mailroom console.' });
    const html = control('textarea', { id: 'send-html', rows: 5, spellcheck: true, placeholder: '<p>Optional HTML part</p>' });

    const form = el('form', null, 'send-form');
    form.id = 'send-form';
    form.append(field('From', from), toField, field('Subject', subject), field('Text', text),
      field('HTML (optional)', html), submitButton('Send'));
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
