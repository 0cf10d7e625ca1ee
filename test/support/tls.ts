// Real TLS clients for tests: what does a server serve to a fresh handshake?
import { execFile } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

export function listen<S extends tls.Server>(server: S, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

export function close(server: tls.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

export interface Served {
  serial: string;
  fingerprint256: string;
  subjectaltname: string | undefined;
  authorized: boolean;
  authorizationError?: string;
  reused: boolean;
  session?: Buffer;
}

/** One full handshake; resolves with what the server presented. */
export function handshake(port: number, options: tls.ConnectionOptions = {}): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    let session: Buffer | undefined;
    socket.on('session', (s) => {
      session = s;
    });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      const result: Served = {
        serial: peer.serialNumber?.toLowerCase(),
        fingerprint256: peer.fingerprint256?.replaceAll(':', '').toLowerCase(),
        subjectaltname: peer.subjectaltname,
        authorized: socket.authorized,
        authorizationError: socket.authorizationError?.toString(),
        reused: socket.isSessionReused(),
      };
      // TLS 1.3 tickets arrive after the handshake: wait briefly for one.
      setTimeout(() => {
        socket.end();
        resolve({ ...result, session });
      }, 30);
    });
    socket.once('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timeout')));
  });
}

/** `openssl s_client` against the server; returns the served leaf's serial (lowercase hex). */
export function opensslServedSerial(port: number, servername?: string): Promise<string> {
  const args = [
    's_client',
    '-connect',
    `127.0.0.1:${port}`,
    ...(servername ? ['-servername', servername] : ['-noservername']),
  ];
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', args, { timeout: 10_000 }, (error, stdout) => {
      if (error && !stdout) return reject(error);
      const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(stdout)?.[0];
      if (!pem) return reject(new Error('openssl printed no certificate'));
      const x = execFile('openssl', ['x509', '-noout', '-serial'], (e, out) => {
        if (e) return reject(e);
        resolve(out.trim().split('=')[1]!.toLowerCase());
      });
      x.stdin!.end(pem);
    });
    child.stdin!.end('Q\n');
  });
}

/**
 * A TLS connection left open after its handshake (the caller ends it). Errors after the handshake
 * (a server refusing a client certificate under TLS 1.3) do not throw; `roundTrip` reports them.
 */
export function connectOpen(port: number, options: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    socket.once('secureConnect', () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timeout')));
  });
}

/** Writes `data` on an open socket to an echo server and resolves with what comes back. */
export function roundTrip(socket: tls.TLSSocket, data: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const timer = setTimeout(() => finish(new Error(`no echo of ${data} within ${timeoutMs} ms`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      received += chunk.toString();
      if (received.length >= data.length) finish(null);
    };
    const onError = (error: Error) => finish(error);
    const onClose = () => finish(new Error('connection closed before the echo'));
    function finish(error: Error | null) {
      clearTimeout(timer);
      socket.off('data', onData).off('error', onError).off('close', onClose);
      if (error) reject(error);
      else resolve(received);
    }
    socket.on('data', onData).once('error', onError).once('close', onClose);
    socket.write(data);
  });
}
