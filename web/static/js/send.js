// The Send a test email view.
import { el } from './core.js';

export const send = {
  route: /^send$/,
  show(root) {
    root.append(el('h2', 'Send a test email'));
  },
};
