// The Suppressions view.
import { el } from './core.js';

export const suppressions = {
  route: /^suppressions$/,
  show(root) {
    root.append(el('h2', 'Suppressions'));
  },
};
