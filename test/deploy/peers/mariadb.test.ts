import { mariadb } from '../../support/peers/data.js';
import { peerSuite } from './suite.js';

// FLUSH SSL reloads the certificate for new connections; established sessions keep theirs.
peerSuite(mariadb, { reloadFailsWhenDown: true, keepsConnections: true, rotations: 5 });
