import { nginx } from '../../support/peers/web.js';
import { peerSuite } from './suite.js';

// Reloads are graceful for requests (none fails, new connections are accepted throughout), but
// old workers close idle keep-alive connections as they exit: a client holding one reconnects.
// `nginx -s reload` fails when no master runs (its pidfile is gone).
peerSuite(nginx, { reloadFailsWhenDown: true, keepsConnections: false });
