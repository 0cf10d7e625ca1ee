// A deliberately tiny RFC 8555 client for testing the harness itself: raw JWS over Node's https
// with the harness CA, no acme-client (whose global axios instance the tests must not touch) and
// nothing from src/ (the issuer under test must not vouch for its own test peer).
import 'reflect-metadata';
import { createHash, createHmac, generateKeyPairSync, type KeyObject, sign, webcrypto } from 'node:crypto';
import https from 'node:https';
import * as x509 from '@peculiar/x509';

export interface AcmeAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

const b64 = (data: string | Buffer) => Buffer.from(data).toString('base64url');

export function request(
  url: string,
  ca: string,
  method = 'GET',
  body?: string,
  headers: Record<string, string> = {},
): Promise<AcmeAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, agent: false, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => {
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {}
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export class MiniAcme {
  readonly key: KeyObject;
  readonly jwk: Record<string, string>;
  kid?: string;
  directory: Record<string, string> = {};
  #nonce?: string;

  constructor(
    readonly directoryUrl: string,
    readonly ca: string,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.key = privateKey;
    const { crv, kty, x, y } = publicKey.export({ format: 'jwk' }) as Record<string, string>;
    this.jwk = { crv: crv!, kty: kty!, x: x!, y: y! };
  }

  get thumbprint(): string {
    const { crv, kty, x, y } = this.jwk;
    return b64(createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest());
  }

  async init(): Promise<this> {
    this.directory = (await request(this.directoryUrl, this.ca)).json as Record<string, string>;
    return this;
  }

  async nonce(): Promise<string> {
    const answer = await request(this.directory.newNonce!, this.ca, 'HEAD');
    return answer.headers['replay-nonce'] as string;
  }

  /** A signed POST; `payload` undefined is POST-as-GET. Retries badNonce (Pebble rejects 5 % by default). */
  async post(url: string, payload?: unknown, extra: Record<string, unknown> = {}): Promise<AcmeAnswer> {
    for (let attempt = 0; ; attempt++) {
      const nonce = this.#nonce ?? (await this.nonce());
      this.#nonce = undefined;
      const header = {
        alg: 'ES256',
        nonce,
        url,
        ...(this.kid ? { kid: this.kid } : { jwk: this.jwk }),
        ...extra,
      };
      const protectedB64 = b64(JSON.stringify(header));
      const payloadB64 = payload === undefined ? '' : b64(JSON.stringify(payload));
      const signature = sign('sha256', Buffer.from(`${protectedB64}.${payloadB64}`), {
        key: this.key,
        dsaEncoding: 'ieee-p1363',
      });
      const body = JSON.stringify({
        protected: protectedB64,
        payload: payloadB64,
        signature: b64(signature),
      });
      const answer = await request(url, this.ca, 'POST', body, { 'content-type': 'application/jose+json' });
      const next = answer.headers['replay-nonce'];
      if (typeof next === 'string') this.#nonce = next;
      if (answer.json.type === 'urn:ietf:params:acme:error:badNonce' && attempt < 5) continue;
      return answer;
    }
  }

  async register(eab?: { kid: string; hmacKey: string }): Promise<AcmeAnswer> {
    const payload: Record<string, unknown> = { termsOfServiceAgreed: true };
    if (eab) {
      const url = this.directory.newAccount!;
      const protectedB64 = b64(JSON.stringify({ alg: 'HS256', kid: eab.kid, url }));
      const payloadB64 = b64(JSON.stringify(this.jwk));
      const mac = createHmac('sha256', Buffer.from(eab.hmacKey, 'base64url'))
        .update(`${protectedB64}.${payloadB64}`)
        .digest();
      payload.externalAccountBinding = { protected: protectedB64, payload: payloadB64, signature: b64(mac) };
    }
    const answer = await this.post(this.directory.newAccount!, payload);
    if (answer.status < 300) this.kid = answer.headers.location as string;
    return answer;
  }

  /** Polls a resource (POST-as-GET) until its status leaves `pending`/`processing`. */
  async poll(url: string): Promise<AcmeAnswer> {
    for (let i = 0; i < 100; i++) {
      const answer = await this.post(url);
      if (answer.json.status !== 'pending' && answer.json.status !== 'processing') return answer;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${url} still pending`);
  }

  /**
   * Orders a certificate for `names`, answering each authorization with `solve(type, token,
   * keyAuthorization, name)` for the first challenge of `type`; returns the chain PEM.
   */
  async issue(
    names: string[],
    type: 'dns-01' | 'http-01',
    solve: (token: string, keyAuthorization: string, name: string) => Promise<void>,
    extra: Record<string, unknown> = {},
  ): Promise<{ chainPem: string; order: AcmeAnswer }> {
    const order = await this.post(this.directory.newOrder!, {
      identifiers: names.map((value) => ({ type: 'dns', value })),
      ...extra,
    });
    if (order.status !== 201) throw new Error(`newOrder: ${order.status} ${order.text}`);
    for (const authzUrl of order.json.authorizations as string[]) {
      const authz = await this.post(authzUrl);
      if (authz.json.status === 'valid') continue;
      const challenge = (authz.json.challenges as { type: string; url: string; token: string }[]).find(
        (c) => c.type === type,
      )!;
      const name = (authz.json.identifier as { value: string }).value;
      await solve(challenge.token, `${challenge.token}.${this.thumbprint}`, name);
      await this.post(challenge.url, {});
      const done = await this.poll(authzUrl);
      if (done.json.status !== 'valid') throw new Error(`authorization ${done.json.status}: ${done.text}`);
    }
    const csr = await csrFor(names);
    const finalized = await this.post(order.json.finalize as string, { csr });
    if (finalized.status !== 200) throw new Error(`finalize: ${finalized.status} ${finalized.text}`);
    const valid = await this.poll(order.headers.location as string);
    const chain = await this.post(valid.json.certificate as string);
    return { chainPem: chain.text, order };
  }
}

async function csrFor(names: string[]): Promise<string> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(alg, false, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: `CN=${names[0]}`,
      keys,
      signingAlgorithm: alg,
      extensions: [new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: 'dns', value })))],
    },
    webcrypto,
  );
  return b64(Buffer.from(csr.rawData));
}

/** The DNS-01 TXT value for a key authorization. */
export const dns01Value = (keyAuthorization: string) =>
  b64(createHash('sha256').update(keyAuthorization).digest());
