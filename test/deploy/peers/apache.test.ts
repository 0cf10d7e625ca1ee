import { apache } from '../../support/peers/web.js';
import { peerSuite } from './suite.js';

// `graceful` lets children finish requests in flight; they then close idle keep-alive
// connections. With no server running, `apache2 -k graceful` starts one, so the reload-fails
// case is not made by stopping it.
peerSuite(apache, { reloadFailsWhenDown: false, keepsConnections: false });
