/**
 * Proof that a swap took effect: a real TLS handshake to the server's own listening address,
 * reading the certificate it now serves. Only a full handshake counts (no session is offered, so
 * nothing resumes), and the peer is not verified: we compare the served fingerprint with the
 * one we just deployed. Under TLS 1.3 the client side completes before a server that demands a
 * client certificate rejects us; under TLS 1.2 the server rejects us first, so the certificate it
 * presented is read as soon as it arrives. Either way mTLS servers can be probed too.
 */
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { CertkeeperError } from '../errors.js';

export interface ProbeResult {
  fingerprint256: string;
  serial: string;
}

/** Where to connect to reach a listening server from inside the process. */
export function probeTarget(server: tls.Server): { host?: string; port?: number; path?: string } | null {
  const address = server.address();
  if (address === null) return null;
  if (typeof address === 'string') return { path: address };
  const { address: host, port } = address as AddressInfo;
  if (host === '0.0.0.0') return { host: '127.0.0.1', port };
  if (host === '::') return { host: '::1', port };
  return { host, port };
}

/** Handshakes with `server` presenting `servername` (omitted for IPs) and reports what it served. */
export function probe(
  server: tls.Server,
  servername: string | undefined,
  timeoutMs = 5_000,
): Promise<ProbeResult> {
  const target = probeTarget(server);
  if (!target) return Promise.reject(new CertkeeperError('LIVE_VERIFY_FAILED', 'server is not listening'));
  return new Promise((resolve, reject) => {
    let settled = false;
    const options: tls.ConnectionOptions & tls.TLSSocketOptions = {
      ...target,
      servername,
      rejectUnauthorized: false,
      // http2 servers without allowHTTP1 want h2; others pick http/1.1 or ignore ALPN.
      ALPNProtocols: ['h2', 'http/1.1'],
      // Only for its callback, which runs once the server's certificate is in (see 'error').
      requestOCSP: true,
    };
    const socket = tls.connect(options);
    const done = (error: Error | null, result?: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(result!);
    };
    const timer = setTimeout(
      () => done(new CertkeeperError('LIVE_VERIFY_FAILED', `live check timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    const served = (): ProbeResult | null => {
      const peer = socket.getPeerCertificate();
      if (!peer?.fingerprint256) return null;
      return {
        fingerprint256: peer.fingerprint256.replaceAll(':', '').toLowerCase(),
        serial: peer.serialNumber.toLowerCase(),
      };
    };
    // A server that requires client certificates refuses the probe under TLS 1.2 before the
    // handshake completes, but after it presented its certificate: read it here, and accept it
    // below when the handshake then ends with an alert from the server.
    let early: ProbeResult | null = null;
    socket.once('OCSPResponse', () => {
      early = served();
    });
    socket.once('secureConnect', () => {
      const result = served();
      if (!result) done(new CertkeeperError('LIVE_VERIFY_FAILED', 'server presented no certificate'));
      else done(null, result);
    });
    socket.once('error', (error: Error & { code?: string }) => {
      if (early && /^ERR_SSL_.*ALERT/.test(error.code ?? '')) return done(null, early);
      done(
        new CertkeeperError('LIVE_VERIFY_FAILED', `live check handshake failed: ${error.message}`, {
          cause: error,
        }),
      );
    });
  });
}
