import { nats } from '../../support/peers/messaging.js';
import { peerSuite } from './suite.js';

// SIGHUP reloads the TLS files for new connections (the live check reads them after NATS's
// INFO line); established clients keep their connection and keep answering PING.
peerSuite(nats, { reloadFailsWhenDown: true, keepsConnections: true });
