/**
 * Who is calling: the verified client certificate of a request or socket, as plain data. Only an
 * authorized peer (its chain verified against the server's `ca`) has an identity; anything else,
 * including a certificate presented to a server with `rejectUnauthorized: false` that did not
 * verify, is null, so a handler can never mistake an unverified certificate for an identity.
 *
 * After TLS session resumption the peer certificate is the one of the original handshake
 * (TLS 1.3 does not resend it, docs/platform.md, "Node TLS"): that is why servers with client authentication
 * bound the session lifetime and change ticket keys when the trusted CAs change.
 */
import { createHash } from 'node:crypto';
import type { Http2ServerRequest } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { serialDerHex } from '../crypto/inspect.js';
import { x509 } from '../crypto/x509.js';

export interface PeerIdentity {
  subject: string;
  commonName: string | null;
  sans: { dns: string[]; ip: string[]; uri: string[]; email: string[] };
  /** Lowercase hex SHA-256 of the DER (no colons), as elsewhere in certkeeper. */
  fingerprint256: string;
  /** Lowercase hex of the DER INTEGER content (as `manager.certificate(id).serial`). */
  serial: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
}

type Carrier = TLSSocket | { socket: unknown } | Http2ServerRequest;

const cache = new WeakMap<TLSSocket, PeerIdentity | null>();

function socketOf(input: Carrier): TLSSocket | null {
  // http2 compat requests: `req.socket` is a proxy; the session's socket is the TLSSocket.
  const stream = (input as Http2ServerRequest).stream as { session?: { socket?: unknown } } | undefined;
  const candidate = stream?.session?.socket ?? (input as { socket?: unknown }).socket ?? input;
  return typeof (candidate as TLSSocket)?.getPeerCertificate === 'function' ? (candidate as TLSSocket) : null;
}

/** The verified client certificate behind a request (http/https/http2) or TLS socket, or null. */
export function peerIdentity(input: Carrier): PeerIdentity | null {
  const socket = socketOf(input);
  if (socket?.authorized !== true) return null;
  const known = cache.get(socket);
  if (known !== undefined) return known;
  const raw = socket.getPeerCertificate(false)?.raw;
  let identity: PeerIdentity | null = null;
  if (raw && raw.length > 0) identity = describe(raw);
  cache.set(socket, identity);
  return identity;
}

function describe(der: Buffer): PeerIdentity | null {
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(der);
  } catch {
    return null;
  }
  const sans: PeerIdentity['sans'] = { dns: [], ip: [], uri: [], email: [] };
  for (const item of cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? []) {
    if (item.type === 'dns') sans.dns.push(item.value.toLowerCase());
    else if (item.type === 'ip') sans.ip.push(item.value);
    else if (item.type === 'url') sans.uri.push(item.value);
    else if (item.type === 'email') sans.email.push(item.value);
  }
  return {
    subject: cert.subject,
    commonName: cert.subjectName.getField('CN')[0] ?? null,
    sans,
    fingerprint256: createHash('sha256').update(der).digest('hex'),
    serial: serialDerHex(cert.serialNumber),
    issuer: cert.issuer,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
