/**
 * Answering TLS-ALPN-01 on the server that serves traffic (protocols.md §1). Node's
 * ALPNCallback runs synchronously and cannot be combined with ALPNProtocols, so the callback
 * also chooses the application protocol for ordinary clients, in the server's own preference
 * order (what OpenSSL does with ALPNProtocols). The ordering trap:
 *   TLS 1.2  SNICallback runs first, then ALPNCallback: setKeyCert in the ALPN callback wins.
 *   TLS 1.3  ALPNCallback runs first, and the context SNICallback returns later overrides
 *            setKeyCert. So the ALPN callback marks the socket and the SNI callback answers
 *            the challenge context for marked sockets.
 */
import type tls from 'node:tls';
import type { AlpnChallengeRegistry } from '../challenges/alpn-registry.js';
import { ACME_TLS_ALPN } from '../challenges/tls-alpn-01.js';

/** Set on a socket whose handshake is a TLS-ALPN-01 validation: the challenge context. */
export const ALPN_CHALLENGE = Symbol('certkeeper.alpnChallenge');

type AlpnCallback = (
  this: tls.TLSSocket,
  info: { servername: string; protocols: string[] },
) => string | undefined;

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
        (this as unknown as Record<symbol, unknown>)[ALPN_CHALLENGE] = context;
        (this as unknown as { setKeyCert(ctx: tls.SecureContext): void }).setKeyCert(context);
        return ACME_TLS_ALPN;
      }
    }
    if (previousCallback) return previousCallback.call(this, info);
    return app.find((p) => info.protocols.includes(p));
  };
  return () => {
    fields.ALPNCallback = previousCallback;
    fields.ALPNProtocols = previousProtocols;
  };
}

/** The challenge context of a socket marked by the ALPN callback, if any. */
export function alpnChallengeOf(socket: unknown): tls.SecureContext | undefined {
  return (socket as Record<symbol, tls.SecureContext | undefined> | undefined)?.[ALPN_CHALLENGE];
}
