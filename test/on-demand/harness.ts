// Real TLS servers whose SNICallback is the on-demand coordinator, and an issuer that counts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { type Clock, systemClock } from '../../src/clock.js';
import { InternalCA } from '../../src/issuers/internal-ca.js';
import type {
  CertificateRequest,
  IssuedCertificate,
  Issuer,
  IssuerContext,
} from '../../src/issuers/issuer.js';
import { silentLogger } from '../../src/logger.js';
import { OnDemandCoordinator } from '../../src/on-demand/coordinator.js';
import { IssuerHost } from '../../src/on-demand/issuer-host.js';
import type { OnDemandOptions } from '../../src/on-demand/options.js';
import { onDemandSniCallback } from '../../src/on-demand/sni.js';
import { FileStore } from '../../src/store/file-store.js';
import type { Store } from '../../src/store/store.js';
import { selfSigned } from '../support/issuers.js';
import { close, listen, type Served } from '../support/tls.js';

/** The embedded CA, counting orders per name and how many ran at once (measured at the issuer). */
export class CountingIssuer implements Issuer {
  readonly id: string;
  readonly perName = new Map<string, number>();
  running = 0;
  peak = 0;
  /** Makes every order take at least this long (so concurrency is observable). */
  delayMs = 0;
  down = false;
  /** Answered instead of the CA's roots while set (a stale or foreign list of anchors). */
  anchorsOverride: string[] | null = null;
  anchorReads = 0;

  constructor(readonly ca: InternalCA = new InternalCA()) {
    this.id = ca.id;
  }

  get total(): number {
    return [...this.perName.values()].reduce((a, b) => a + b, 0);
  }

  async issue(request: CertificateRequest, context: IssuerContext): Promise<IssuedCertificate> {
    for (const name of request.names) this.perName.set(name, (this.perName.get(name) ?? 0) + 1);
    this.running++;
    this.peak = Math.max(this.peak, this.running);
    try {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.down) throw new Error('test CA is down');
      return await this.ca.issue(request, context);
    } finally {
      this.running--;
    }
  }

  trustAnchors(context: IssuerContext): Promise<string[]> {
    this.anchorReads++;
    return this.anchorsOverride ? Promise.resolve(this.anchorsOverride) : this.ca.trustAnchors(context);
  }

  bind(binding: Parameters<NonNullable<Issuer['bind']>>[0]): void {
    this.ca.bind(binding);
  }
}

export interface Rig {
  coordinator: OnDemandCoordinator;
  host: IssuerHost;
  port: number;
  /** A handshake for `name`, verified against the CA's roots. */
  served(name: string, options?: tls.ConnectionOptions): Promise<Served>;
  close(): Promise<void>;
}

export const DEFAULT_NAME = 'default.ondemand.test';

export async function defaultContext(): Promise<tls.SecureContext> {
  const { key, certificate } = await selfSigned([DEFAULT_NAME]);
  return tls.createSecureContext({ cert: certificate.pem, key: key.toPem() });
}

export async function startRig(
  issuer: Issuer,
  store: Store,
  options: OnDemandOptions,
  extra: { clock?: Clock; fallback?: tls.SecureContext } = {},
): Promise<Rig> {
  const host = new IssuerHost({ issuer, store, clock: extra.clock });
  const coordinator = new OnDemandCoordinator(host, options);
  const fallback = extra.fallback ?? (await defaultContext());
  const server = tls.createServer({
    SNICallback: onDemandSniCallback(coordinator, { defaultContext: fallback }),
  });
  server.on('tlsClientError', () => {});
  const port = await listen(server);
  const context = { store, clock: systemClock, logger: silentLogger, signal: new AbortController().signal };
  const anchors = issuer.trustAnchors ? await issuer.trustAnchors(context) : [];
  return {
    coordinator,
    host,
    port,
    served: (name, options = {}) => served(port, { servername: name, ca: anchors, ...options }),
    async close() {
      await close(server);
      await coordinator.close();
    },
  };
}

export function tempStore(): { store: FileStore; dispose(): void } {
  const directory = mkdtempSync(join(tmpdir(), 'ck-ondemand-'));
  return {
    store: new FileStore({ directory: join(directory, 'store') }),
    dispose: () => rmSync(directory, { recursive: true, force: true }),
  };
}

/** The DNS names a served certificate is for. */
export function sansOf(served: Served): string[] {
  return (served.subjectaltname ?? '').split(', ').map((s) => s.replace(/^DNS:/, ''));
}

/**
 * One handshake: what the server presented. Unlike test/support's, no wait for a session ticket,
 * and a generous time limit, since a burst of orders on a loaded machine takes a while.
 */
export function served(
  port: number,
  options: tls.ConnectionOptions = {},
  timeoutMs = 60_000,
): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      resolve({
        serial: peer.serialNumber?.toLowerCase(),
        fingerprint256: peer.fingerprint256?.replaceAll(':', '').toLowerCase(),
        subjectaltname: peer.subjectaltname,
        authorized: socket.authorized,
        authorizationError: socket.authorizationError?.toString(),
        reused: socket.isSessionReused(),
      });
      socket.destroy();
    });
    socket.once('error', reject);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('handshake timeout')));
  });
}
