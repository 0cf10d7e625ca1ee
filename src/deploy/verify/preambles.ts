/**
 * The plaintext exchanges some services require before TLS starts on the same connection. Each
 * takes a connected TCP socket, speaks just enough of the protocol to make the server start TLS,
 * and resolves when the next byte on the socket is the server's side of a TLS handshake.
 *
 * - PostgreSQL: the client sends SSLRequest (length 8, code 80877103); the server answers one
 *   byte, `S` (will do TLS) or `N` (no TLS on this server).
 * - MySQL / MariaDB: the server speaks first (the initial handshake packet, whose capability
 *   flags say whether it can do TLS); the client answers a short SSLRequest packet (capabilities
 *   with CLIENT_SSL, max packet size, charset, 23 zero bytes) with sequence number 1, then TLS.
 * - NATS (before server 2.10's `handshake_first`): the server sends one `INFO {json}` line,
 *   whose `tls_required` says TLS follows; the client then starts TLS.
 */
import type { Socket } from 'node:net';

export type Protocol = 'tls' | 'postgres' | 'mysql' | 'nats';
export const PROTOCOLS: readonly Protocol[] = ['tls', 'postgres', 'mysql', 'nats'];

const POSTGRES_SSL_REQUEST = 80877103;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_SECURE_CONNECTION = 0x8000;
const MAX_LINE = 64 * 1024;

/** Reads from `socket` until `enough(buffered)` says how many bytes make the answer. */
function readUntil(socket: Socket, enough: (data: Buffer) => number | null): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('server closed the connection before TLS started'));
    };
    const onData = (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      let length: number | null;
      try {
        length = enough(data);
      } catch (error) {
        cleanup();
        reject(error);
        return;
      }
      if (length === null) return;
      cleanup();
      socket.pause();
      // Bytes past the answer belong to TLS; none are expected, as the server waits for us.
      if (data.length > length) socket.unshift(data.subarray(length));
      resolve(data.subarray(0, length));
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('end', onEnd);
  });
}

async function postgres(socket: Socket): Promise<void> {
  const request = Buffer.alloc(8);
  request.writeUInt32BE(8, 0);
  request.writeUInt32BE(POSTGRES_SSL_REQUEST, 4);
  socket.write(request);
  const answer = await readUntil(socket, (data) => (data.length >= 1 ? 1 : null));
  if (answer[0] !== 0x53) throw new Error('PostgreSQL server refused SSLRequest (ssl is off)');
}

async function mysql(socket: Socket): Promise<void> {
  const packet = await readUntil(socket, (data) => {
    if (data.length < 4) return null;
    const length = data.readUIntLE(0, 3);
    return data.length >= 4 + length ? 4 + length : null;
  });
  // Initial handshake v10: protocol byte, NUL-terminated server version, thread id (4),
  // 8 bytes of scramble, a filler byte, then the lower two bytes of the capability flags.
  if (packet[4] === 0xff) throw new Error('MySQL server sent an error instead of its handshake');
  const versionEnd = packet.indexOf(0, 5);
  if (packet[4] !== 10 || versionEnd < 0) throw new Error('not a MySQL protocol 10 handshake');
  const capabilities = packet.readUInt16LE(versionEnd + 1 + 4 + 8 + 1);
  if (!(capabilities & CLIENT_SSL)) throw new Error('MySQL server does not offer TLS');
  const body = Buffer.alloc(32);
  body.writeUInt32LE(CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION, 0);
  body.writeUInt32LE(16 * 1024 * 1024, 4);
  body[8] = 45; // utf8mb4_general_ci
  const header = Buffer.from([32, 0, 0, 1]);
  socket.write(Buffer.concat([header, body]));
}

async function nats(socket: Socket): Promise<void> {
  const line = await readUntil(socket, (data) => {
    const end = data.indexOf('\r\n');
    if (end >= 0) return end + 2;
    if (data.length > MAX_LINE) throw new Error('NATS INFO line too long');
    return null;
  });
  const text = line.toString('utf8');
  if (!text.startsWith('INFO ')) throw new Error('NATS server did not start with INFO');
  const info = JSON.parse(text.slice(5)) as { tls_required?: boolean };
  if (info.tls_required !== true) throw new Error('NATS server does not require TLS on this port');
}

/** Runs the plaintext part of `protocol` on a connected socket (nothing for plain TLS). */
export async function preamble(protocol: Protocol, socket: Socket): Promise<void> {
  if (protocol === 'postgres') await postgres(socket);
  else if (protocol === 'mysql') await mysql(socket);
  else if (protocol === 'nats') await nats(socket);
}
