// The Overview view.
import { el } from './core.js';

export const overview = {
  route: /^overview$/,
  show(root) {
    root.append(el('h2', 'Overview'));
  },
};
