/**
 * TLS-ALPN-01 (RFC 8737) on the serving port: the CA opens a TLS connection offering only the
 * ALPN protocol `acme-tls/1` with SNI = the identifier, and expects a self-signed certificate
 * with that single name and a critical id-pe-acmeIdentifier extension holding SHA-256 of the key
 * authorization. certkeeper answers it on the same tls/https/http2 server that serves traffic
 * (see `server/alpn.ts`), so no port 80 and no proxy are needed.
 *
 * Requires Node >= 20.18 / 22.9 (ALPNCallback plus TLSSocket.setKeyCert inside it). On older
 * Node the solver reports itself unsupported and the issuer falls back to the next challenge.
 */
import { createHash } from 'node:crypto';
import tls from 'node:tls';
import { createCertificate } from '../../crypto/certificate-builder.js';
import { PrivateKey } from '../../crypto/keys.js';
import { x509 } from '../../crypto/x509.js';
import { CertkeeperError } from '../../errors.js';
import type { ChallengeContext, ChallengeSolver, ChallengeTask } from '../solver.js';
import { alpnDigest, clearAlpnAcks, waitForAlpnAcks } from './acks.js';
import { ALPN_CERT_LIFETIME_MS, alpnRecordKey, ID_PE_ACME_IDENTIFIER, readAlpnRecord } from './record.js';
import { AlpnChallengeRegistry } from './registry.js';

export { alpnRecordKey, ID_PE_ACME_IDENTIFIER } from './record.js';
export { ACME_TLS_ALPN } from './server-hook.js';

/** Whether this Node can answer TLS-ALPN-01 on a serving port. */
export function tlsAlpnSupported(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const socket = tls.TLSSocket.prototype as unknown as Record<string, unknown>;
  const hasApi = typeof socket.setKeyCert === 'function';
  return (
    hasApi && (major > 22 || (major === 22 && minor >= 9) || (major === 20 && minor >= 18) || major === 21)
  );
}

/** The SNI a CA sends for an identifier: the name itself, or the reverse name of an IP (RFC 8738). */
export function alpnServerName(identifier: ChallengeTask['identifier']): string {
  if (identifier.type === 'dns') return identifier.value.toLowerCase();
  if (identifier.value.includes(':')) {
    const [head = '', tail = ''] = identifier.value.toLowerCase().split('::');
    const left = head ? head.split(':') : [];
    const right = tail ? tail.split(':') : [];
    const groups = identifier.value.includes('::')
      ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
      : left;
    const nibbles = groups.map((g) => g.padStart(4, '0')).join('');
    return `${nibbles.split('').reverse().join('.')}.ip6.arpa`;
  }
  return `${identifier.value.split('.').reverse().join('.')}.in-addr.arpa`;
}

/** The RFC 8737 challenge certificate for `task`. */
export async function createAlpnCertificate(task: ChallengeTask): Promise<{ key: string; cert: string }> {
  const key = await PrivateKey.generate('ec-p256');
  const digest = createHash('sha256').update(task.keyAuthorization).digest();
  // extnValue is the DER of the acmeIdentifier, itself an OCTET STRING of the 32-byte digest.
  const value = Buffer.concat([Buffer.from([0x04, 0x20]), digest]);
  // Short-lived: replicas refuse longer-lived ones (alpn-record.ts), and the CA looks at it within
  // minutes. Wall-clock time, as for any certificate a peer checks.
  const now = Date.now();
  const cert = await createCertificate({
    publicKey: key,
    commonName: 'ACME TLS-ALPN-01 challenge',
    names: [task.identifier.value],
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now - 60_000 + ALPN_CERT_LIFETIME_MS),
    extensions: [new x509.Extension(ID_PE_ACME_IDENTIFIER, true, value)],
  });
  return { key: key.toPem(), cert: cert.pem };
}

export class TlsAlpn01Solver implements ChallengeSolver {
  readonly type = 'tls-alpn-01' as const;
  /** Used when the issuer context carries no registry (standalone use). */
  readonly registry = new AlpnChallengeRegistry();
  /** How long to wait for other replicas to hold a challenge before validating (default 10 s). */
  ackTimeoutMs = 10_000;
  /** The challenge certificate presented per (name, key authorization), until its clean-up. */
  readonly #presented = new Map<string, string>();

  /**
   * Not for wildcards, not on Node without ALPNCallback/setKeyCert, and, in a manager, not while
   * no attached server listens (nothing could answer the CA): the next challenge type is used.
   */
  supports(identifier: ChallengeTask['identifier'], wildcard: boolean, context?: ChallengeContext): boolean {
    if (wildcard || !tlsAlpnSupported()) return false;
    return context === undefined || this.unavailable(identifier, wildcard, context) === undefined;
  }

  /** CHALLENGE_UNAVAILABLE, naming the fix, while the manager has no attached server listening. */
  unavailable(
    identifier: ChallengeTask['identifier'],
    wildcard: boolean,
    context: ChallengeContext,
  ): CertkeeperError | undefined {
    const registry = context.tlsAlpn?.registry;
    // Standalone use (no manager's registry): whoever holds `this.registry` answers.
    if (wildcard || !tlsAlpnSupported() || !registry || registry.answering) return undefined;
    return new CertkeeperError(
      'CHALLENGE_UNAVAILABLE',
      `TLS-ALPN-01 cannot be answered for ${identifier.value}: no server attached to this manager is listening. ` +
        'Create the server (createHttpsServer, createHttp2SecureServer, createTlsServer or manager.attach) and ' +
        'call listen() before awaiting manager.ready(), or configure another challenge type (HTTP-01, DNS-01). ' +
        'The certificate is ordered again as soon as an attached server listens.',
      { details: { identifier: identifier.value, challenge: 'tls-alpn-01', retryable: false } },
    );
  }

  async present(task: ChallengeTask, context: ChallengeContext): Promise<void> {
    const servername = alpnServerName(task.identifier);
    const credentials = await createAlpnCertificate(task);
    // The store copy is for replicas (sealed where the store encrypts private keys); this process
    // must hold it in memory before the CA looks.
    const record = JSON.stringify(credentials);
    await context.store.put(alpnRecordKey(servername), record);
    (context.tlsAlpn?.registry ?? this.registry).set(servername, credentials);
    this.#presented.set(presentedKey(servername, task), credentials.cert);
    const replicas = context.tlsAlpn?.replicas;
    if (replicas) {
      // Other replicas load it from the store; wait until each holds it (acks.ts).
      const missing = await waitForAlpnAcks(context.store, servername, replicas, {
        digest: alpnDigest(record),
        timeoutMs: this.ackTimeoutMs,
        signal: context.signal,
      });
      if (missing.length > 0) {
        context.logger.warn('replicas did not confirm the TLS-ALPN-01 challenge in time; validating anyway', {
          servername,
          missing,
        });
      }
    }
  }

  /**
   * Takes this task's challenge away. Another order for the same name (a forced renewal racing
   * the scheduled one, another replica) may have replaced it meanwhile: what is held in memory or
   * stored is removed only when it is this task's challenge (its acmeIdentifier digest is this
   * key authorization's), so one order's clean-up never pulls the answer of another.
   */
  async cleanup(task: ChallengeTask, context: ChallengeContext): Promise<void> {
    const servername = alpnServerName(task.identifier);
    const key = alpnRecordKey(servername);
    const raw = await context.store.get(key);
    const stored = raw ? storedChallenge(servername, raw) : null;
    const mine = stored !== null && challengeDigest(stored.cert) === keyAuthorizationDigest(task);
    const registry = context.tlsAlpn?.registry ?? this.registry;
    const held = this.#presented.get(presentedKey(servername, task)) ?? (mine ? stored.cert : undefined);
    this.#presented.delete(presentedKey(servername, task));
    if (held !== undefined) registry.delete(servername, held);
    if (!mine) return;
    // Not a compare-and-delete: an order presenting between the read and this delete loses its
    // record; its own in-memory copy stays, and the CA retries a failed validation.
    await context.store.delete(key);
    if (context.tlsAlpn?.replicas) await clearAlpnAcks(context.store, servername);
  }
}

/** The `{ key, cert }` of a stored record, or null when it is not one (it is not ours then). */
function storedChallenge(servername: string, raw: Uint8Array): { cert: string } | null {
  try {
    const record = readAlpnRecord(servername, raw) as { cert?: unknown };
    return typeof record?.cert === 'string' ? { cert: record.cert } : null;
  } catch {
    return null;
  }
}

function presentedKey(servername: string, task: ChallengeTask): string {
  return `${servername}\n${task.keyAuthorization}`;
}

function keyAuthorizationDigest(task: ChallengeTask): string {
  return createHash('sha256').update(task.keyAuthorization).digest('hex');
}

/** The SHA-256 an RFC 8737 certificate carries in its acmeIdentifier extension (hex), or null. */
function challengeDigest(certPem: string): string | null {
  try {
    const value = new x509.X509Certificate(certPem).getExtension(ID_PE_ACME_IDENTIFIER)?.value;
    const bytes = value ? Buffer.from(value) : null;
    return bytes?.length === 34 ? bytes.subarray(2).toString('hex') : null;
  } catch {
    return null;
  }
}
