/**
 * The TLS-ALPN-01 challenge record replicas share through the store, and the check that makes one
 * safe to answer with. The replica ordering writes `{ key, cert }` (PEM) under
 * `challenges/tls-alpn-01/<servername>.key`; every replica loads it into the in-memory registry its
 * servers answer from (cluster/sync.ts). Whoever can write the store could write one too, so a
 * record is only ever used when it is exactly what certkeeper writes:
 *   - a JSON object with the string fields `key` and `cert` and nothing else (no `ca`, no
 *     OpenSSL engine options: only these two reach `tls.createSecureContext`);
 *   - `cert` one self-signed certificate with exactly one name, that name, and a critical
 *     id-pe-acmeIdentifier extension holding a SHA-256 digest (RFC 8737 §3), short-lived and
 *     valid now; `key` the one private key that matches it.
 * The key name ends in `.key` so stores that encrypt private keys at rest (`layout.isSensitive`:
 * RedisStore and PostgresStore with keys, EncryptedStore) seal the whole record: with encryption
 * keys configured, a writer without them can neither read a challenge key nor plant a record.
 * Whether the name is one this replica answers for is the caller's check (it knows its names).
 */
import type { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { parseCertificates } from '../../crypto/inspect.js';
import { PrivateKey, publicKeyMatches } from '../../crypto/keys.js';
import { canonicalIp } from '../../crypto/names.js';
import { x509 } from '../../crypto/x509.js';
import { CertkeeperError } from '../../errors.js';
import { layout } from '../../store/layout.js';

export const ID_PE_ACME_IDENTIFIER = '1.3.6.1.5.5.7.1.31';

/** Challenge certificates live this long; a CA validates within minutes of being asked. */
export const ALPN_CERT_LIFETIME_MS = 3_600_000;
/** Clock difference tolerated between the replica that made a challenge and one that loads it. */
const SKEW_MS = 5 * 60_000;

/** A challenge checked by `checkAlpnChallenge`: safe to build a context from. */
export interface AlpnChallenge {
  readonly key: string;
  readonly cert: string;
  /** Epoch ms after which it is not answered any more. */
  readonly notAfter: number;
}

/** Where the record for `servername` is stored. */
export function alpnRecordKey(servername: string): string {
  return layout.alpnRecord(servername);
}

/** The identifier a TLS-ALPN-01 server name stands for (RFC 8738 reverse names for IPs), or null. */
export function alpnIdentifier(servername: string): { type: 'dns' | 'ip'; value: string } | null {
  const name = servername.toLowerCase();
  const v4 = /^((?:\d{1,3}\.){3}\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (v4) {
    const ip = v4[1]!.split('.').reverse().join('.');
    return isIP(ip) === 4 ? { type: 'ip', value: canonicalIp(ip)! } : null;
  }
  const v6 = /^((?:[0-9a-f]\.){31}[0-9a-f])\.ip6\.arpa$/.exec(name);
  if (v6) {
    const nibbles = v6[1]!.split('.').reverse().join('');
    const ip = nibbles.match(/.{4}/g)!.join(':');
    return { type: 'ip', value: canonicalIp(ip)! };
  }
  if (name.endsWith('.arpa') || !/^[a-z0-9.-]+$/.test(name)) return null;
  return { type: 'dns', value: name };
}

function verifiesItself(cert: X509Certificate): boolean {
  try {
    return cert.verify(cert.publicKey);
  } catch {
    return false;
  }
}

function refuse(servername: string, reason: string): CertkeeperError {
  return new CertkeeperError(
    'CHALLENGE_RECORD_INVALID',
    `TLS-ALPN-01 challenge record for ${JSON.stringify(servername)} refused: ${reason}`,
    { details: { servername, reason } },
  );
}

/**
 * Checks that `record` (parsed JSON or the solver's own object) is a genuine RFC 8737 challenge
 * for `servername`, valid at `now`. Throws `CHALLENGE_RECORD_INVALID` (never with key material).
 */
export function checkAlpnChallenge(servername: string, record: unknown, now = Date.now()): AlpnChallenge {
  if (record === null || typeof record !== 'object' || Array.isArray(record))
    throw refuse(servername, 'not an object');
  const fields = Object.keys(record);
  if (fields.length !== 2 || !fields.includes('key') || !fields.includes('cert'))
    throw refuse(servername, `fields must be exactly key and cert (found ${fields.slice(0, 8).join(', ')})`);
  const { key: keyPem, cert: certPem } = record as Record<string, unknown>;
  if (typeof keyPem !== 'string' || typeof certPem !== 'string')
    throw refuse(servername, 'key and cert must be PEM strings');
  const identifier = alpnIdentifier(servername);
  if (!identifier) throw refuse(servername, 'not a name TLS-ALPN-01 validates');

  let certs: ReturnType<typeof parseCertificates>;
  let key: PrivateKey;
  try {
    certs = parseCertificates(certPem, 'challenge certificate');
    key = PrivateKey.fromPem(keyPem);
  } catch (error) {
    throw refuse(servername, `unreadable PEM (${(error as CertkeeperError).code ?? 'error'})`);
  }
  if (certs.length !== 1) throw refuse(servername, 'cert must hold exactly one certificate');
  if (keyPem.includes('CERTIFICATE')) throw refuse(servername, 'key must hold only the private key');
  const [cert] = certs as [(typeof certs)[0]];
  const { info } = cert;
  const names = info.names;
  if (names.length !== 1 || names[0] !== identifier.value)
    throw refuse(servername, 'the certificate must name exactly the identifier being validated');
  if (identifier.type === 'ip' ? info.ipAddresses.length !== 1 : info.dnsNames.length !== 1)
    throw refuse(servername, 'the certificate names the identifier with the wrong type');
  // Self-signed, as a leaf: its own issuer, signed by its own key (X509_check_issued would also
  // want keyCertSign, which a challenge certificate does not have).
  if (info.issuer !== info.subject || !verifiesItself(cert.node))
    throw refuse(servername, 'the certificate is not self-signed');
  if (info.isCA) throw refuse(servername, 'the certificate is a CA certificate');
  const acme = new x509.X509Certificate(cert.der).getExtension(ID_PE_ACME_IDENTIFIER);
  const value = acme ? Buffer.from(acme.value) : null;
  if (!acme?.critical || value?.length !== 34 || value[0] !== 0x04 || value[1] !== 0x20)
    throw refuse(servername, 'no critical acmeIdentifier extension holding a SHA-256 digest');
  if (!publicKeyMatches(key, cert.node.publicKey)) throw refuse(servername, 'the key does not match');
  const notBefore = info.notBefore.getTime();
  const notAfter = info.notAfter.getTime();
  if (notAfter - notBefore > ALPN_CERT_LIFETIME_MS + SKEW_MS)
    throw refuse(servername, 'the certificate lives longer than a challenge certificate');
  if (notBefore > now + SKEW_MS || notAfter <= now)
    throw refuse(servername, 'the certificate is not valid now');
  return { key: keyPem, cert: certPem, notAfter };
}

/** The JSON a stored record holds (checked by `checkAlpnChallenge` when it is used). */
export function readAlpnRecord(servername: string, raw: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch {
    throw refuse(servername, 'not JSON');
  }
}
