import { redis } from '../../support/peers/data.js';
import { peerSuite } from './suite.js';

// CONFIG SET of the TLS files rebuilds Redis's TLS context for new connections; established
// ones are untouched and keep answering. With Redis down the CONFIG SET cannot be sent. The
// action points Redis at the target's own paths, so the stale case is a target without it.
peerSuite(redis, { reloadFailsWhenDown: true, keepsConnections: true, stale: 'no-reload' });
