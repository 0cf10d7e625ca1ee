import { mosquitto } from '../../support/peers/messaging.js';
import { peerSuite } from './suite.js';

// SIGHUP makes Mosquitto 2.0 reload its listeners' certificates for new connections;
// established MQTT sessions keep their connection and keep answering PINGREQ.
peerSuite(mosquitto, { reloadFailsWhenDown: true, keepsConnections: true });
