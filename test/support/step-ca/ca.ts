// A faithful stand-in for step-ca (which cannot run here), following docs/platform.md#step-ca rule
// by rule over real HTTPS (node:https) with client-certificate verification. The rules themselves
// are in rules.ts; this file is the server: PKI, routes, the answers' shapes and status codes,
// mTLS, the injectable clock, restarts, and test-only faults (a proxy answering garbage).
//
// Answers follow step-ca: sign/renew/rekey 201 `{crt, ca, certChain}`; revoke 200
// `{"status":"ok"}`; /health 200; /roots 201 (sic); /root/{fp} 200 or 404. Errors are
// `{"status": N, "message": M}`; 401 messages are generic (the reason only goes to the CA's log,
// `ca.log`, as step-ca does), 400/403 carry the reason.
import { type webcrypto, X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createCertificate } from '../../../src/crypto/certificate-builder.js';
import { PrivateKey } from '../../../src/crypto/keys.js';
import { crypto, x509 } from '../../../src/crypto/x509.js';
import { type Authority, copyCertificate, issueLeaf } from './certificates.js';
import { createProvisioner, type Provisioner } from './provisioner.js';
import {
  authorizeRenewToken,
  authorizeRevoke,
  authorizeToken,
  checkCsrAgainstToken,
  type DurationPolicy,
  Refusal,
  validity,
} from './rules.js';

export interface FakeStepCaOptions {
  /** Names tokens may address (the audience rule). Default `['127.0.0.1', 'localhost']`. */
  dnsNames?: string[];
  /** Names in the CA's TLS certificate; default `dnsNames`. */
  tlsNames?: string[];
  /** The CA's clock (ms). Default `Date.now`. */
  now?: () => number;
  /** step-ca's `allowRenewalAfterExpiry` claim. Default false, as in step-ca. */
  allowRenewalAfterExpiry?: boolean;
  duration?: Partial<DurationPolicy>;
}

/** Test-only misbehaviour of whatever answers at a path (a broken proxy, a truncated stream). */
export type Fault = 'garbage' | 'html' | 'truncated' | 'error500' | 'echo' | 'verbose401';

export interface LogEntry {
  method: string;
  path: string;
  status: number;
  reason?: string;
}

const GENERIC: Record<number, string> = {
  401: 'The request lacked necessary authorization to be completed. Please see the certificate authority logs for more info.',
  500: 'The certificate authority encountered an Internal Server Error. Please see the certificate authority logs for more info.',
};

export class FakeStepCa {
  readonly log: LogEntry[] = [];
  readonly faults = new Map<string, Fault>();
  /** Revoked serials (decimal, as step-ca keys them) → reason code. */
  readonly revoked = new Map<string, number>();
  readonly issued: string[] = [];
  allowRenewalAfterExpiry: boolean;
  /** Test-only: answer every /root/{fp} with this CA's root, as a man in the middle would. */
  impostor = false;
  readonly dnsNames: string[];
  readonly now: () => number;
  startedAt = 0;
  port = 0;
  readonly #used = new Set<string>();
  /** Connections whose client certificate failed: a request already buffered on them is dropped. */
  readonly #rejected = new WeakSet<object>();
  readonly #policy: DurationPolicy;
  #server: https.Server | undefined;

  private constructor(
    readonly root: Authority,
    readonly intermediate: Authority,
    readonly server: Authority,
    readonly provisioner: Provisioner,
    options: FakeStepCaOptions,
  ) {
    this.dnsNames = options.dnsNames ?? ['127.0.0.1', 'localhost'];
    this.now = options.now ?? Date.now;
    this.allowRenewalAfterExpiry = options.allowRenewalAfterExpiry ?? false;
    this.#policy = {
      defaultMs: 24 * 3_600_000,
      minMs: 5 * 60_000,
      maxMs: 24 * 3_600_000,
      backdateMs: 60_000,
      ...options.duration,
    };
  }

  static async start(options: FakeStepCaOptions = {}): Promise<FakeStepCa> {
    const wall = Date.now();
    const authority = async (cn: string, issuer?: Authority, pathLength?: number): Promise<Authority> => {
      const key = await PrivateKey.generate('ec-p256');
      const certificate = await createCertificate({
        publicKey: key,
        issuer,
        subject: `CN=${cn},O=certkeeper test`,
        notBefore: new Date(wall - 3_600_000),
        notAfter: new Date(wall + 10 * 24 * 3_600_000),
        isCA: true,
        pathLength,
      });
      return { key, certificate };
    };
    const root = await authority('Fake step-ca Root CA', undefined, 1);
    const intermediate = await authority('Fake step-ca Intermediate CA', root, 0);
    const serverKey = await PrivateKey.generate('ec-p256');
    const names = options.tlsNames ?? options.dnsNames ?? ['127.0.0.1', 'localhost'];
    const serverCert = await createCertificate({
      publicKey: serverKey,
      issuer: intermediate,
      commonName: 'Fake step-ca',
      names,
      notBefore: new Date(wall - 3_600_000),
      notAfter: new Date(wall + 10 * 24 * 3_600_000),
      extKeyUsage: ['serverAuth'],
    });
    const ca = new FakeStepCa(
      root,
      intermediate,
      { key: serverKey, certificate: serverCert },
      await createProvisioner(),
      options,
    );
    await ca.listen();
    return ca;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  get rootPem(): string {
    return this.root.certificate.pem;
  }

  get rootFingerprint(): string {
    return this.root.certificate.info.fingerprint256;
  }

  /** Requests seen at `path` (all methods). */
  requests(path: string): number {
    return this.log.filter((e) => e.path === path).length;
  }

  /** Reasons logged for refusals, in order. */
  reasons(): string[] {
    return this.log.filter((e) => e.reason).map((e) => e.reason!);
  }

  /** Starts listening (on the previous port after a stop). The start time is what iat is compared with. */
  async listen(): Promise<void> {
    const server = https.createServer(
      {
        key: this.server.key.toPem(),
        cert: this.server.certificate.pem + this.intermediate.certificate.pem,
        ca: [this.rootPem],
        // step-ca: VerifyClientCertIfGiven. Node cannot verify against an injected clock, so the
        // handshake is completed here and the certificate judged in `secureConnection`.
        requestCert: true,
        rejectUnauthorized: false,
      },
      (req, res) => void this.#handle(req, res),
    );
    server.on('secureConnection', (socket: TLSSocket) => this.#checkClientCertificate(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    // At the one-second resolution of `iat`: a token minted in the second the CA started counts
    // as minted after it (real step-ca compares with nanoseconds and would refuse it; tests mint
    // within milliseconds of starting the CA, a race no deployment has).
    this.startedAt = Math.floor(this.now() / 1000) * 1000;
    this.#server = server;
  }

  /** Stops answering (connections refused) until `listen()`. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A restart: the used-token database survives (step-ca keeps it on disk), the start time moves. */
  async restart(): Promise<void> {
    await this.stop();
    await this.listen();
  }

  /**
   * Rule (mTLS): a client certificate, when given, must chain to this CA and be valid by the
   * CA's clock, else the handshake fails. So an expired certificate cannot renew over mTLS.
   */
  #checkClientCertificate(socket: TLSSocket): void {
    const peer = socket.getPeerX509Certificate();
    if (!peer) return;
    const now = this.now();
    const issuer = this.intermediate.certificate.node;
    const valid =
      peer.checkIssued(issuer) &&
      peer.verify(issuer.publicKey) &&
      Date.parse(peer.validFrom) <= now &&
      now <= Date.parse(peer.validTo);
    if (!valid) {
      this.log.push({ method: 'TLS', path: 'handshake', status: 0, reason: 'client certificate rejected' });
      this.#rejected.add(socket);
      socket.destroy();
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#rejected.has(req.socket)) return;
    const path = new URL(req.url ?? '/', 'https://ca').pathname;
    const method = req.method ?? 'GET';
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const fault = this.faults.get(path);
    if (fault) {
      this.log.push({ method, path, status: -1, reason: `fault ${fault}` });
      this.#fault(res, fault, raw);
      return;
    }
    try {
      const [status, body] = await this.#route(method, path, raw, req);
      this.log.push({ method, path, status });
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    } catch (error) {
      const refusal = error instanceof Refusal ? error : new Refusal(400, String(error));
      const status = error instanceof Refusal ? refusal.status : 500;
      this.log.push({ method, path, status, reason: refusal.reason });
      const message =
        GENERIC[status] ??
        (status === 403
          ? `The request was forbidden by the certificate authority: ${refusal.reason}`
          : `The request could not be completed: ${refusal.reason}`);
      res.writeHead(status, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status, message }));
    }
  }

  #fault(res: ServerResponse, fault: Fault, body: string): void {
    // 'verbose401': a CA (or a version) that shows the reason of a replay instead of the generic text.
    if (fault === 'verbose401') {
      const message = 'authority.authorizeToken: token already used';
      res
        .writeHead(401, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ status: 401, message }));
      return;
    }
    // 'echo': a verbose CA quoting the token it was sent in its error message.
    if (fault === 'echo') {
      const ott = /"ott":"([^"]*)"/.exec(body)?.[1];
      const message = `token ${ott} is not acceptable`;
      res
        .writeHead(400, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ status: 400, message }));
      return;
    }
    if (fault === 'garbage')
      res.writeHead(201, { 'Content-Type': 'text/plain' }).end('\u0000\u0001 not json ]]');
    else if (fault === 'html')
      res
        .writeHead(200, { 'Content-Type': 'text/html' })
        .end('<html><body><h1>Welcome to nginx</h1></body></html>');
    else if (fault === 'truncated')
      res
        .writeHead(201, { 'Content-Type': 'application/json' })
        .end('{"crt":"-----BEGIN CERTIFICATE-----\\nMIIB');
    else
      res
        .writeHead(500, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ status: 500, message: GENERIC[500] }));
  }

  #json(raw: string): Record<string, unknown> {
    try {
      const value = JSON.parse(raw);
      if (typeof value === 'object' && value !== null) return value;
    } catch {
      // below
    }
    throw new Refusal(400, 'error reading request body');
  }

  async #route(method: string, path: string, raw: string, req: IncomingMessage): Promise<[number, unknown]> {
    const peer = (req.socket as TLSSocket).getPeerX509Certificate?.();
    const get = method === 'GET';
    if (get && path === '/health') return [200, { status: 'ok' }];
    if (get && path === '/roots') return [201, { crts: [this.rootPem] }];
    if (get && path.startsWith('/root/')) {
      const sum = path.slice('/root/'.length).toLowerCase().replaceAll('-', '');
      if (sum !== this.rootFingerprint && !this.impostor)
        throw new Refusal(404, `root with fingerprint ${sum} was not found`);
      return [200, { ca: this.rootPem }];
    }
    if (method !== 'POST') throw new Refusal(404, `${method} ${path} not found`);
    if (path === '/1.0/sign') return [201, await this.#sign(this.#json(raw))];
    if (path === '/1.0/renew') {
      const auth = req.headers.authorization;
      let cert: X509Certificate;
      if (peer) cert = peer;
      else if (auth?.startsWith('Bearer '))
        cert = await authorizeRenewToken(auth.slice(7), this.#tokenContext());
      else throw new Refusal(400, 'missing client certificate');
      this.#authorizeRenew(cert);
      return [201, await this.#copy(cert)];
    }
    if (path === '/1.0/rekey') {
      // Rekey is mTLS only (no Bearer path in step-ca).
      if (!peer) throw new Refusal(400, 'missing client certificate');
      const csr = await this.#csr(this.#json(raw));
      this.#authorizeRenew(peer);
      return [201, await this.#copy(peer, (await csr.publicKey.export(crypto)) as webcrypto.CryptoKey)];
    }
    if (path === '/1.0/revoke') return [200, await this.#revoke(this.#json(raw), peer)];
    throw new Refusal(404, `${method} ${path} not found`);
  }

  #tokenContext() {
    return {
      provisioners: [this.provisioner],
      dnsNames: this.dnsNames,
      startedAt: this.startedAt,
      now: this.now(),
      intermediate: this.intermediate.certificate.node,
      useToken: (id: string) => {
        if (this.#used.has(id)) return false;
        this.#used.add(id);
        return true;
      },
    };
  }

  /** Rule: the body needs a CSR whose self-signature verifies (400 otherwise). */
  async #csr(body: Record<string, unknown>): Promise<x509.Pkcs10CertificateRequest> {
    if (typeof body.csr !== 'string' || body.csr === '') throw new Refusal(400, 'missing csr');
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(body.csr);
    } catch {
      throw new Refusal(400, 'invalid csr');
    }
    if (!(await csr.verify(crypto))) throw new Refusal(400, 'invalid csr: signature does not verify');
    return csr;
  }

  async #sign(body: Record<string, unknown>) {
    const csr = await this.#csr(body);
    if (typeof body.ott !== 'string' || body.ott === '') throw new Refusal(400, 'missing ott');
    const { claims } = await authorizeToken(body.ott, 'sign', this.#tokenContext());
    checkCsrAgainstToken(csr, claims);
    const { notBefore, notAfter } = validity(body, this.now(), this.#policy);
    const leaf = await issueLeaf(csr, claims, this.intermediate, notBefore, notAfter);
    return this.#answer(leaf.der);
  }

  /**
   * Rules of renewal (`authorizeRenew`): a revoked certificate is never renewed; one not yet
   * valid by the CA's clock is refused; an expired one only when renewal after expiry is allowed.
   */
  #authorizeRenew(cert: X509Certificate): void {
    const serial = BigInt(`0x${cert.serialNumber}`).toString(10);
    if (this.revoked.has(serial)) throw new Refusal(401, 'certificate has been revoked');
    const now = this.now();
    if (now < Date.parse(cert.validFrom)) throw new Refusal(401, 'certificate is not yet valid');
    if (now > Date.parse(cert.validTo) && !this.allowRenewalAfterExpiry)
      throw new Refusal(401, 'certificate has expired');
  }

  /** Renew copies the certificate (certificates.ts); rekey certifies `newKey` instead. */
  async #copy(old: X509Certificate, newKey?: webcrypto.CryptoKey) {
    return this.#answer(
      await copyCertificate(old, this.intermediate, this.now(), this.#policy.backdateMs, newKey),
    );
  }

  #answer(der: Buffer) {
    const crt = new x509.X509Certificate(der).toString('pem');
    this.issued.push(new X509Certificate(der).serialNumber.toLowerCase());
    const ca = this.intermediate.certificate.pem;
    return { crt: `${crt}\n`, ca, certChain: [`${crt}\n`, ca] };
  }

  async #revoke(body: Record<string, unknown>, peer: X509Certificate | undefined) {
    const { serial, reasonCode } = await authorizeRevoke(body, peer, this.#tokenContext());
    if (this.revoked.has(serial))
      throw new Refusal(400, `certificate with serial number '${serial}' is already revoked`);
    this.revoked.set(serial, reasonCode);
    return { status: 'ok' };
  }
}
