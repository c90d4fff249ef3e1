// The Webhooks view.
import { el } from './core.js';

export const webhooks = {
  route: /^webhooks$/,
  show(root) {
    root.append(el('h2', 'Webhooks'));
  },
};
