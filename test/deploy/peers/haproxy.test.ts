import { haproxy } from '../../support/peers/web.js';
import { peerSuite } from './suite.js';

// `commit ssl cert` swaps in memory with no reload at all: established connections are untouched
// and keep answering. HAProxy never re-reads the file by itself, so the stale case is a target
// without the runtime API action.
peerSuite(haproxy, { reloadFailsWhenDown: true, keepsConnections: true, stale: 'no-reload' });
