import { postgres } from '../../support/peers/data.js';
import { peerSuite } from './suite.js';

// SIGHUP to the postmaster (what pg_reload_conf() does) reloads the SSL files for new
// connections; established sessions keep theirs. A stopped cluster leaves no postmaster.pid.
peerSuite(postgres, { reloadFailsWhenDown: true, keepsConnections: true });
