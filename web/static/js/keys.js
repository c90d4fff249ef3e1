// The API keys view.
import { el } from './core.js';

export const keys = {
  route: /^keys$/,
  show(root) {
    root.append(el('h2', 'API keys'));
  },
};
