// The emails: the list with its search, and one email's page.
import { $, api, el, every, labelled, onSubmit, go, time } from './core.js';

export const emails = {
  route: /^emails$/,
  show(root) {
    const id = el('input');
    id.id = 'email-id';
    id.type = 'search';
    id.spellcheck = false;
    id.required = true;
    const form = el('form', null, 'row');
    form.id = 'email-form';
    const look = el('button', 'Look up');
    look.type = 'submit';
    form.append(...labelled('Email id', id), look);
    onSubmit(form, async () => go('emails/' + encodeURIComponent(id.value.trim())));
    root.append(el('h2', 'Emails'), form);
  },
};

// email is one email's page, #/emails/<id>. While the email is on its way
// (queued, retrying) or dead (a replay not yet recorded), it is looked up again
// every second.
export const email = {
  route: /^emails\/([^/]+)$/,
  show(root, match) {
    const id = decodeURIComponent(match[1]);
    const heading = el('h2', 'Email ' + id);
    heading.id = 'email-heading';
    const dl = el('dl');
    for (const [name, field] of [['Status', 'status'], ['Subject', 'subject'], ['To', 'to'],
      ['Attempts', 'attempts'], ['Last error', 'error']]) {
      const dd = el('dd');
      dd.id = 'email-' + field;
      dl.append(el('dt', name), dd);
    }
    const events = el('ol');
    events.id = 'email-events';
    root.append(heading, dl, el('h3', 'Timeline'), events);
    let settled = false;
    const stop = every(1000, async () => {
      if (settled) return;
      const e = await api('GET', `/api/emails/${encodeURIComponent(id)}`);
      if (!$('email-status')) return; // the operator left the page
      draw(e);
      settled = !['queued', 'retrying', 'dead'].includes(e.status);
    });
    heading.scrollIntoView({ block: 'start' });
    return stop;
  },
};

function draw(e) {
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
}
