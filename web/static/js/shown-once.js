// A secret the API shows only once (a new API key, a webhook's signing secret),
// shared by the keys and webhooks views: in a read-only field with a Copy button
// and a plain warning that it will not be shown again.
import { button, el, input, labelled, say } from './core.js';

// showOnce puts in slot (in place of what it held) a panel that shows value once,
// and moves the focus to its field, ready to copy. title heads it, label names
// the field (fieldId is the field's id), warning says what the secret is and that
// it is not shown again. Its Done button removes the panel and the value with it.
export function showOnce(slot, { title, label, value, fieldId, warning }) {
  const panel = el('section', null, 'shown-once');
  panel.setAttribute('aria-labelledby', fieldId + '-title');
  const heading = el('h3', title);
  heading.id = fieldId + '-title';
  const field = input({ id: fieldId, readOnly: true, value });
  field.addEventListener('focus', () => field.select());
  const copyButton = button('Copy', `Copy ${label}`, () => copy(field));
  copyButton.classList.add('primary');
  const row = el('div', null, 'row');
  row.append(...labelled(label, field), copyButton);
  const done = button('Done, I have kept it', null, () => panel.remove());
  done.id = fieldId + '-done';
  panel.append(heading, el('p', warning, 'warning'), row, done);
  slot.replaceChildren(panel);
  field.focus();
}

// copy puts the field's text on the clipboard, or, when the browser does not let
// the page write it (no permission, not a secure context), selects the text so
// that the operator copies it with the keyboard.
async function copy(field) {
  try {
    await navigator.clipboard.writeText(field.value);
    say('Copied to the clipboard.');
  } catch {
    field.focus();
    field.select();
    say('The browser did not let the page copy: the text is selected, press Ctrl+C (⌘C on a Mac) to copy it.');
  }
}
