/**
 * Answering TLS-ALPN-01 on the server that serves traffic. Node's ALPNCallback runs synchronously
 * and cannot be combined with ALPNProtocols, so the callback also chooses the application protocol
 * for ordinary clients, in the server's own preference order (what OpenSSL does with
 * ALPNProtocols). The ordering trap:
 *   TLS 1.2  SNICallback runs first, then ALPNCallback: setKeyCert in the ALPN callback wins.
 *   TLS 1.3  ALPNCallback runs first, and the context SNICallback returns later overrides
 *            setKeyCert. So the ALPN callback marks the socket and the SNI callback answers
 *            the challenge context for marked sockets.
 *
 * A validation connection is the challenge certificate and nothing else: anyone can open one (the
 * challenge is public while it lasts), so it must not become a way around the server's client
 * authentication. It asks for no client certificate (the challenge context carries no `ca`, so a
 * requested certificate would be checked against Node's public roots), it is ended right after
 * its handshake without reaching 'secureConnection' listeners, and its session never serves an
 * ordinary connection: under TLS 1.3 no ticket is sent at all (the connection ends before OpenSSL
 * writes one); under TLS 1.2 OpenSSL sends the ticket in the same flight as its Finished, so a
 * connection resuming a session negotiated for `acme-tls/1` is closed before the application sees
 * it, and such sessions are kept from the server's 'newSession' listeners (session caches).
 */
import type tls from 'node:tls';
import { vetoServerEvents } from '../../net/server-events.js';
import type { AlpnChallengeRegistry } from './registry.js';

/** The ALPN protocol of a TLS-ALPN-01 validation (RFC 8737). */
export const ACME_TLS_ALPN = 'acme-tls/1';

/** Set on a socket whose handshake is a TLS-ALPN-01 validation: the challenge context. */
export const ALPN_CHALLENGE = Symbol('certkeeper.alpnChallenge');

type AlpnCallback = (
  this: tls.TLSSocket,
  info: { servername: string; protocols: string[] },
) => string | undefined;

/** The parts of a server-side TLSSocket Node keeps internal, used to take a validation out of its hands. */
interface SocketInternals {
  _handle: { setVerifyMode(request: boolean, reject: boolean): void } | null;
  _requestCert: boolean;
  _rejectUnauthorized: boolean;
  _releaseControl?: () => boolean;
}

/**
 * The DER of an SSL_SESSION keeps the protocol ALPN selected (an OCTET STRING) and a resumed
 * session keeps the one of its first handshake: these bytes mark a session of a validation.
 */
const CHALLENGE_SESSION = Buffer.from([0x04, ACME_TLS_ALPN.length, ...Buffer.from(ACME_TLS_ALPN, 'latin1')]);

function isChallengeSession(session: unknown): boolean {
  return Buffer.isBuffer(session) && session.includes(CHALLENGE_SESSION);
}

/** Decodes Node's wire-format ALPN buffer (length-prefixed names). */
export function decodeAlpn(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (!Buffer.isBuffer(value) && !(value instanceof Uint8Array)) return [];
  const out: string[] = [];
  for (let i = 0; i < value.length; ) {
    const n = value[i]!;
    out.push(Buffer.from(value.subarray(i + 1, i + 1 + n)).toString('latin1'));
    i += 1 + n;
  }
  return out;
}

/**
 * Makes `socket`'s handshake a validation: the challenge certificate, no certificate request, and
 * the connection ended as soon as the handshake is done.
 */
function answerValidation(socket: tls.TLSSocket, context: tls.SecureContext): void {
  const internals = socket as unknown as SocketInternals & Record<symbol, unknown>;
  internals[ALPN_CHALLENGE] = context;
  socket.setKeyCert(context);
  // Still inside ClientHello processing: the server's flight (and its CertificateRequest) is not
  // written yet, so this connection is asked for no client certificate.
  internals._handle?.setVerifyMode(false, false);
  internals._requestCert = false;
  internals._rejectUnauthorized = false;
  // Before Node's own 'secure' handler: taking control first means Node emits neither
  // 'secureConnection' nor, once the socket closes, a tlsClientError for it. end() sends
  // close_notify after the server's handshake messages (TLS 1.2 needs its Finished flushed).
  socket.prependOnceListener('secure', () => {
    internals._releaseControl?.();
    socket.destroySoon();
  });
}

/**
 * Installs the ALPN callback on `server`. `protocols` are the application protocols for ordinary
 * clients (default: the server's own ALPNProtocols). Returns a function that restores the server.
 * Returns null when the server negotiates no ALPN at all and none was given: installing a
 * callback would make clients that offer ALPN fail, so TLS-ALPN-01 is not answered there.
 */
export function installAlpnChallenges(
  server: tls.Server,
  registry: AlpnChallengeRegistry,
  protocols?: string[],
): (() => void) | null {
  const fields = server as unknown as { ALPNProtocols?: unknown; ALPNCallback?: AlpnCallback };
  const previousProtocols = fields.ALPNProtocols;
  const previousCallback = fields.ALPNCallback;
  const app = protocols ?? decodeAlpn(previousProtocols);
  if (app.length === 0 && !previousCallback) return null;

  fields.ALPNProtocols = undefined;
  fields.ALPNCallback = function alpn(this: tls.TLSSocket, info) {
    if (info.protocols.includes(ACME_TLS_ALPN)) {
      const context = registry.get(info.servername);
      if (context) {
        answerValidation(this, context);
        return ACME_TLS_ALPN;
      }
    }
    if (previousCallback) return previousCallback.call(this, info);
    return app.find((p) => info.protocols.includes(p));
  };
  const restoreEvents = vetoServerEvents(server, vetoValidation);
  return () => {
    fields.ALPNCallback = previousCallback;
    fields.ALPNProtocols = previousProtocols;
    restoreEvents();
  };
}

/**
 * A validation connection that got as far as 'secureConnection' (it should not), or a connection
 * that resumed a validation's session, is closed before the application sees it; a validation's
 * session is never handed to a session cache.
 */
function vetoValidation(event: string | symbol, args: unknown[]): boolean {
  if (event === 'secureConnection') {
    const socket = args[0] as tls.TLSSocket;
    if (alpnChallengeOf(socket) || (socket.isSessionReused() && isChallengeSession(socket.getSession()))) {
      socket.destroy();
      return true;
    }
    return false;
  }
  return event === 'newSession' && isChallengeSession(args[1]);
}

/** The challenge context of a socket marked by the ALPN callback, if any. */
export function alpnChallengeOf(socket: unknown): tls.SecureContext | undefined {
  return (socket as Record<symbol, tls.SecureContext | undefined> | undefined)?.[ALPN_CHALLENGE];
}
