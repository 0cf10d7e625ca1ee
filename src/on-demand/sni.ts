/**
 * An SNICallback that serves on-demand certificates: memory first (synchronously), then the
 * coordinator's bounded wait. It is a regular function because Node calls a server's SNICallback
 * with the TLSSocket as `this`, which is where the client's address comes from; Node parses only
 * the server name out of the ClientHello before this callback, so `alpn` is not known here.
 *
 * When no certificate can be had (denied, failed, still ordering after `waitMs`): with
 * `onFailure: 'default'` the handshake continues with `defaultContext` (or the server's own
 * certificate when none is given); with `'refuse'` it is ended without a certificate.
 */
import type tls from 'node:tls';
import type { OnDemandCoordinator } from './coordinator.js';

export type SniCallback = (
  this: unknown,
  servername: string,
  cb: (err: Error | null, ctx?: tls.SecureContext) => void,
) => void;

export interface OnDemandSniOptions {
  /** Served when there is no on-demand certificate and `onFailure` is `default`. */
  defaultContext?: tls.SecureContext;
  /** Default: the coordinator's `onFailure`. */
  onFailure?: 'default' | 'refuse';
}

function remoteAddress(socket: unknown): string | undefined {
  const address = (socket as { remoteAddress?: unknown } | null)?.remoteAddress;
  return typeof address === 'string' ? address : undefined;
}

export function onDemandSniCallback(
  coordinator: OnDemandCoordinator,
  options: OnDemandSniOptions = {},
): SniCallback {
  const onFailure = options.onFailure ?? coordinator.options.onFailure;
  const fallback = (cb: (err: Error | null, ctx?: tls.SecureContext) => void, reason: string) => {
    if (onFailure === 'refuse') cb(new Error(`no certificate for this name (${reason})`));
    else cb(null, options.defaultContext);
  };
  return function sni(this: unknown, servername, cb) {
    const hello = { clientIp: remoteAddress(this), serverName: servername };
    const hit = coordinator.cached(servername, hello);
    if (hit) return cb(null, hit);
    coordinator.obtainForHandshake(servername, hello).then(
      (outcome) => (outcome.context ? cb(null, outcome.context) : fallback(cb, outcome.reason)),
      () => fallback(cb, 'failed'),
    );
  };
}
