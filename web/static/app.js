// Mailroom operator console: plain JavaScript modules, no framework, no build
// step. This file is the router: the part of the URL after "#/" picks a view, so
// every view has a link (#/emails/<id> opens that email) and Back works.
//
// A view is { route, show(root, match) }: route a RegExp matched against the
// path, show builds the view into root (an empty element) and may return a
// function that stops it (timers, polling) when the operator leaves.
import { $, api, hasKey, onSubmit, say, takeNote, useKey } from './js/core.js';
import { overview } from './js/overview.js';
import { emails, email } from './js/emails.js';
import { deadLetters } from './js/dead-letters.js';
import { suppressions } from './js/suppressions.js';
import { webhooks, webhook } from './js/webhooks.js';
import { keys } from './js/keys.js';
import { send } from './js/send.js';

const views = [overview, emails, email, deadLetters, suppressions, webhooks, webhook, keys, send];

let stop = null; // stops the view on show

// show draws the view the URL names, or asks for a key first.
function show() {
  if (stop) stop();
  stop = null;
  const path = location.hash.replace(/^#\/?/, '') || 'overview';
  const root = $('view');
  root.replaceChildren();
  markNav(path);
  if (!hasKey()) {
    say('Enter an admin key to begin.');
    return;
  }
  for (const view of views) {
    const match = path.match(view.route);
    if (match) {
      stop = view.show(root, match) || null;
      return;
    }
  }
  say(`No such page: #/${path}`, true);
}

// markNav marks the navigation link of the current view for sight and screen readers.
function markNav(path) {
  const section = path.split(/[/?]/)[0]; // emails/<id> and emails?<search> are Emails
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#/' + section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

document.addEventListener('DOMContentLoaded', () => {
  onSubmit($('key-form'), async () => {
    useKey($('key').value.trim());
    try {
      await api('GET', '/api/dead-letters?limit=1'); // any admin route: is the key one?
    } catch (e) {
      if (e.status === 401 || e.status === 403) useKey('');
      throw e;
    }
    say('Key accepted.');
    $('key-panel').open = false;
    show();
  });
  $('forget-key').addEventListener('click', () => {
    useKey('');
    $('key').value = '';
    $('key-panel').open = true;
    show();
    say('Key forgotten.');
  });
  // A change of view clears the status line, or says the note of the go that
  // made it once the new view is drawn.
  window.addEventListener('hashchange', () => {
    const note = takeNote();
    say('');
    show();
    if (note) say(note);
  });
  if (hasKey()) $('key-panel').open = false;
  show();
});
