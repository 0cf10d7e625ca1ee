/**
 * Node hands a server's connections to the application through `server.emit`: 'secureConnection'
 * once a handshake is done, 'newSession' for session caches, 'tlsClientError' for a client that
 * failed. None of them has a hook that could veto it, so certkeeper wraps the server's `emit`
 * (an own property of that one server) where an event must not reach the application: a
 * TLS-ALPN-01 validation (alpn.ts) or the refusal of its own live check (live-verify.ts).
 */
import type tls from 'node:tls';

/** Returns true when the event was dealt with and must not be emitted. */
export type EventVeto = (event: string | symbol, args: unknown[]) => boolean;

/** Wraps `server.emit` with `veto`; returns the function that unwraps it. */
export function vetoServerEvents(server: tls.Server, veto: EventVeto): () => void {
  const own = Object.getOwnPropertyDescriptor(server, 'emit');
  const emit = server.emit;
  const guarded = function emitGuarded(
    this: tls.Server,
    event: string | symbol,
    ...args: unknown[]
  ): boolean {
    // Returning false is what an event nobody listens to returns: Node then carries on by itself
    // (a 'newSession' nobody stores lets the handshake finish).
    if (veto(event, args)) return false;
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  };
  server.emit = guarded as tls.Server['emit'];
  return () => {
    if (server.emit !== guarded) return; // wrapped again since: unwrapping would drop that wrapper
    if (own) Object.defineProperty(server, 'emit', own);
    else delete (server as unknown as { emit?: unknown }).emit;
  };
}
