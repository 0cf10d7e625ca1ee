// A client connection held open across reloads, to measure which services keep established
// connections (and keep answering on them) and which drop them.
import net from 'node:net';
import tls from 'node:tls';
import { type Protocol, preamble } from '../../../src/deploy/verify/preambles.js';

export interface Held {
  /** Whether the connection is still open and, when the service has a ping, answers it. */
  alive(): Promise<boolean>;
  close(): void;
}

function request(
  socket: tls.TLSSocket,
  payload: string | Buffer,
  answered: (text: string) => boolean,
): Promise<boolean> {
  return new Promise((resolve) => {
    let text = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(ok);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (answered(text)) done(true);
    };
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), 5_000);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(payload);
  });
}

const HTTP_GET = 'GET /index.html HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n';
const REDIS_PING = '*1\r\n$4\r\nPING\r\n';
// MQTT 3.1.1 CONNECT (clean session, keep-alive 60 s, empty client id), then PINGREQ.
const MQTT_CONNECT = Buffer.from([0x10, 0x0c, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 60, 0, 0]);
const MQTT_PINGREQ = Buffer.from([0xc0, 0]);

export async function holdConnection(
  port: number,
  protocol: Protocol,
  ping?: 'http' | 'redis' | 'nats' | 'mqtt',
): Promise<Held> {
  const raw = net.connect({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => raw.once('connect', resolve).once('error', reject));
  await preamble(protocol, raw);
  const socket = tls.connect({ socket: raw, servername: 'localhost', rejectUnauthorized: false });
  await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  socket.on('error', () => {});
  let closed = false;
  socket.once('close', () => {
    closed = true;
  });
  // NATS and MQTT want a CONNECT first (NATS closes a client that sends none within seconds).
  if (
    ping === 'nats' &&
    !(await request(socket, 'CONNECT {"verbose":false}\r\nPING\r\n', (t) => t.includes('PONG')))
  ) {
    throw new Error('NATS did not answer CONNECT');
  }
  if (ping === 'mqtt' && !(await request(socket, MQTT_CONNECT, (t) => t.startsWith('\x20\x02\x00\x00')))) {
    throw new Error('Mosquitto did not accept CONNECT');
  }
  const exchange = () =>
    ping === 'nats'
      ? request(socket, 'PING\r\n', (t) => t.includes('PONG'))
      : ping === 'mqtt'
        ? request(socket, MQTT_PINGREQ, (t) => t.includes('\xd0\x00'))
        : ping === 'http'
          ? request(socket, HTTP_GET, (t) => /\r\n\r\nok/.test(t))
          : ping === 'redis'
            ? request(socket, REDIS_PING, (t) => t.includes('+PONG'))
            : Promise.resolve(true);
  if (!(await exchange())) throw new Error('held connection got no first answer');
  return {
    async alive() {
      if (closed) return false;
      return exchange();
    },
    close: () => socket.destroy(),
  };
}
