// `certkeeper/undici`: an undici dispatcher (for `fetch(url, { dispatcher })`) whose client
// certificate follows the managed one. undici is an optional peer and its types are part of this
// entry's, which is why it is not in `certkeeper` (node:https users have `createRotatingAgent`).
// Every exported name is listed.

export {
  createRotatingDispatcher,
  type RotatingDispatcher,
  type RotatingDispatcherOptions,
} from '../mtls/rotating-dispatcher.js';
