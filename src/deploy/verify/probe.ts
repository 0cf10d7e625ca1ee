/**
 * One live look at what a service serves: a TCP connection, the service's plaintext preamble if
 * it has one (see preambles.ts), then a full TLS handshake with SNI that reads the leaf the
 * server presented. The peer is not verified (we compare its fingerprint with the one we
 * deployed), no session is offered (nothing resumes), and the connection is closed with
 * close_notify once the certificate is read.
 */
import net from 'node:net';
import tls from 'node:tls';
import { type Protocol, preamble } from './preambles.js';

export interface ProbeEndpoint {
  host: string;
  port: number;
  /** SNI; omitted for IP addresses (TLS forbids IP literals in SNI). */
  servername?: string;
  protocol: Protocol;
}

export interface Served {
  /** Lowercase hex SHA-256 of the leaf. */
  fingerprint256: string;
  /** Lowercase hex, as Node prints it. */
  serial: string;
}

/** Connects once and reports the served leaf; rejects with the network or TLS error. */
export function probeOnce(endpoint: ProbeEndpoint, timeoutMs: number, signal?: AbortSignal): Promise<Served> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let secure: tls.TLSSocket | undefined;
    const raw = net.connect({ host: endpoint.host, port: endpoint.port });
    const finish = (error: Error | null, served?: Served) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (error) {
        secure?.destroy();
        raw.destroy();
        reject(error);
        return;
      }
      secure?.end();
      // A server that never answers our close_notify is dropped after the timeout.
      setTimeout(() => raw.destroy(), timeoutMs).unref();
      resolve(served!);
    };
    const onAbort = () => finish(new Error('live check aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => finish(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    raw.once('error', (error) => finish(error));
    raw.once('connect', () => {
      preamble(endpoint.protocol, raw).then(
        () => {
          if (settled) return;
          const servername = net.isIP(endpoint.servername ?? '') ? undefined : endpoint.servername;
          secure = tls.connect({ socket: raw, servername, rejectUnauthorized: false });
          secure.once('secureConnect', () => {
            const peer = secure!.getPeerCertificate();
            if (!peer?.fingerprint256) finish(new Error('server presented no certificate'));
            else
              finish(null, {
                fingerprint256: peer.fingerprint256.replaceAll(':', '').toLowerCase(),
                serial: peer.serialNumber.toLowerCase(),
              });
          });
          secure.once('error', (error) => finish(error));
        },
        (error: Error) => finish(error),
      );
    });
  });
}
