// Each rule of the fake step-ca (test/support/step-ca/rules.ts) with its own
// negative test, driven from the client side: the issuer where its own checks let the request
// through, the StepCaClient where they would stop it first. Every test asserts both what the
// client reports (the typed error) and which rule the CA logged.
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCsr } from '../../../src/crypto/csr.js';
import { parseCertificates } from '../../../src/crypto/inspect.js';
import { PrivateKey } from '../../../src/crypto/keys.js';
import { StepCaClient } from '../../../src/issuers/step-ca/client.js';
import { mintRenewToken, mintRevokeToken } from '../../../src/issuers/step-ca/mint.js';
import { StepCaIssuer } from '../../../src/issuers/step-ca/step-ca-issuer.js';
import { FakeStepCa } from '../../support/step-ca/ca.js';
import { context, makeRequest, mint } from '../../support/step-ca/harness.js';
import { createProvisioner } from '../../support/step-ca/provisioner.js';

let ca: FakeStepCa;
let offset = 0;
let client: StepCaClient;
beforeAll(async () => {
  ca = await FakeStepCa.start({ now: () => Date.now() + offset });
  client = new StepCaClient({ caUrl: new URL(ca.url), root: ca.rootPem, timeoutMs: 5000 });
});
afterAll(() => ca.stop());

const lastReason = () => ca.reasons().at(-1);
const names = ['svc.test', '127.0.0.1'];

async function enrollDirect(token: string, csrNames = names, commonName?: string) {
  const key = await PrivateKey.generate();
  const csr = await createCsr({ key, names: csrNames, ...(commonName ? { commonName } : {}) });
  return { key, chainPem: await client.sign(csr.pem, token) };
}

/** A token with hand-written claims, signed by the CA's provisioner. */
async function craft(claims: Record<string, unknown>, sign = ca.provisioner.privateJwk) {
  const now = Math.floor(Date.now() / 1000);
  const { importJWK } = await import('jose');
  return new SignJWT({
    iss: ca.provisioner.name,
    sub: 'svc.test',
    sans: names,
    aud: `${ca.url}/1.0/sign`,
    nbf: now,
    iat: now,
    exp: now + 300,
    jti: Math.random().toString(36).slice(2),
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid: ca.provisioner.kid, typ: 'JWT' })
    .sign(await importJWK(sign, 'ES256'));
}

function issuerFor(token: string, caUrl = ca.url) {
  return new StepCaIssuer({ caUrl, rootPem: ca.rootPem, token });
}

describe('sign: 201 with certChain', () => {
  it('answers leaf + intermediate (no root); CN = sub, SANs, serverAuth + clientAuth, 24 h + 1 min backdate', async () => {
    const before = Date.now();
    const { chainPem } = await enrollDirect(await mint(ca, { subject: 'svc.test', sans: names }));
    const chain = parseCertificates(chainPem);
    expect(chain).toHaveLength(2);
    expect(chain[1]!.info.fingerprint256).toBe(ca.intermediate.certificate.info.fingerprint256);
    const leaf = chain[0]!.info;
    expect(leaf.commonName).toBe('svc.test');
    expect(leaf.names).toEqual(['svc.test', '127.0.0.1']);
    expect(leaf.extKeyUsage).toEqual(['serverAuth', 'clientAuth']);
    expect(leaf.notBefore.getTime()).toBeLessThanOrEqual(before - 59_000);
    expect(leaf.lifetimeMs).toBeGreaterThanOrEqual(24 * 3_600_000 + 59_000);
    expect(leaf.lifetimeMs).toBeLessThanOrEqual(24 * 3_600_000 + 61_000);
  });

  it('health is ok and /roots answers 201 with the root', async () => {
    expect(await client.health()).toBe(true);
    expect(await client.roots()).toEqual([ca.rootPem]);
    expect(ca.log.filter((e) => e.path === '/roots').at(-1)?.status).toBe(201);
  });
});

describe('token rules (each a 401 with a generic message; the reason is only in the CA log)', () => {
  it('audience: a token for a host outside the CA DNS names is refused', async () => {
    const other = await FakeStepCa.start({ dnsNames: ['ca.internal'], tlsNames: ['127.0.0.1'] });
    try {
      const token = await mint(other, { subject: 'svc.test', sans: names });
      const issuer = new StepCaIssuer({ caUrl: other.url, rootPem: other.rootPem, token });
      const error = await issuer.issue(await makeRequest(names), context()).catch((e) => e);
      expect(error.code).toBe('TOKEN_REJECTED');
      expect(error.details.caMessage).toMatch(/lacked necessary authorization/);
      expect(other.reasons()).toEqual(['provisioner not found or invalid audience']);
    } finally {
      await other.stop();
    }
  });

  it('audience: the port is ignored', async () => {
    const token = await mint(ca, { subject: 'svc.test', sans: names, caUrl: 'https://127.0.0.1:1' });
    await expect(issuerFor(token).issue(await makeRequest(names), context())).resolves.toHaveProperty(
      'chainPem',
    );
  });

  it('provisioner: a token signed by an unknown key is refused', async () => {
    const stranger = await createProvisioner(ca.provisioner.name);
    const token = await mint(ca, { subject: 'svc.test', sans: names, key: stranger.privateJwk });
    const error = await issuerFor(token)
      .issue(await makeRequest(names), context())
      .catch((e) => e);
    expect(error.code).toBe('TOKEN_REJECTED');
    expect(lastReason()).toBe('provisioner not found or invalid audience');
  });

  it('jti replay: a token used once is refused the second time (from a second store)', async () => {
    const token = await mint(ca, { subject: 'svc.test', sans: names });
    await issuerFor(token).issue(await makeRequest(names), context());
    const error = await issuerFor(token)
      .issue(await makeRequest(names), context())
      .catch((e) => e);
    expect(error.code).toBe('TOKEN_REJECTED');
    expect(error.message).toMatch(/single-use/);
    expect(lastReason()).toBe('token already used');
  });

  it('jti replay is checked before the signature: a forgery burns the real token', async () => {
    const token = await mint(ca, { subject: 'svc.test', sans: names });
    const [h, p, s] = token.split('.');
    const forged = `${h}.${p}.${s!.startsWith('A') ? `B${s!.slice(1)}` : `A${s!.slice(1)}`}`;
    await expect(enrollDirect(forged)).rejects.toMatchObject({ code: 'TOKEN_REJECTED' });
    expect(lastReason()).toBe('invalid token signature');
    await expect(enrollDirect(token)).rejects.toMatchObject({ code: 'TOKEN_REJECTED' });
    expect(lastReason()).toBe('token already used');
  });

  it('nbf: inside the one-minute leeway it is accepted, beyond it refused (CA clock behind)', async () => {
    offset = -45_000;
    try {
      const inside = await mint(ca, { subject: 'svc.test', sans: names });
      await expect(issuerFor(inside).issue(await makeRequest(names), context())).resolves.toBeTruthy();
      offset = -3 * 60_000;
      const beyond = await mint(ca, { subject: 'svc.test', sans: names });
      const error = await issuerFor(beyond)
        .issue(await makeRequest(names), context())
        .catch((e) => e);
      expect(error.code).toBe('TOKEN_REJECTED');
      expect(lastReason()).toBe('token not valid yet (nbf)');
    } finally {
      offset = 0;
    }
  });

  it('exp: inside the leeway it is accepted, beyond it refused (CA clock ahead)', async () => {
    try {
      offset = 5 * 60_000 + 30_000;
      const inside = await mint(ca, { subject: 'svc.test', sans: names });
      await expect(issuerFor(inside).issue(await makeRequest(names), context())).resolves.toBeTruthy();
      offset = 7 * 60_000;
      const beyond = await mint(ca, { subject: 'svc.test', sans: names });
      const error = await issuerFor(beyond)
        .issue(await makeRequest(names), context())
        .catch((e) => e);
      expect(error.code).toBe('TOKEN_REJECTED');
      expect(lastReason()).toBe('token is expired (exp)');
    } finally {
      offset = 0;
    }
  });

  it('iat: a token issued in the future beyond the leeway is refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expect(enrollDirect(await craft({ iat: now + 300 }))).rejects.toMatchObject({
      code: 'TOKEN_REJECTED',
    });
    expect(lastReason()).toBe('token issued in the future (iat)');
  });

  it('tokens issued before the CA started are refused', async () => {
    const token = await mint(ca, { subject: 'svc.test', sans: names, now: ca.startedAt - 2000 });
    const error = await issuerFor(token)
      .issue(await makeRequest(names), context())
      .catch((e) => e);
    expect(error.code).toBe('TOKEN_REJECTED');
    expect(lastReason()).toBe('token issued before the bootstrap of certificate authority');
  });

  it('an empty subject is refused', async () => {
    await expect(enrollDirect(await craft({ sub: '' }))).rejects.toMatchObject({ code: 'TOKEN_REJECTED' });
    expect(lastReason()).toBe('token subject cannot be empty');
  });
});

describe('CSR rules (400 for a bad CSR, 403 for names)', () => {
  it('a CSR whose signature does not verify is a 400', async () => {
    const key = await PrivateKey.generate();
    const csr = await createCsr({ key, names });
    const der = Buffer.from(csr.der);
    der[der.length - 5] = der[der.length - 5]! ^ 0xff;
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    const error = await client
      .sign(pem, await mint(ca, { subject: 'svc.test', sans: names }))
      .catch((e) => e);
    expect(error).toMatchObject({ code: 'CA_REFUSED', details: { status: 400, retryable: false } });
    expect(lastReason()).toMatch(/^invalid csr/);
  });

  it('the CSR common name must be empty, the subject or one of the SANs', async () => {
    const token = await mint(ca, { subject: 'svc.test', sans: names });
    const error = await enrollDirect(token, names, 'intruder.test').catch((e) => e);
    expect(error).toMatchObject({ code: 'CA_REFUSED', details: { status: 403 } });
    expect(error.message).toMatch(/forbidden.*common name/);
  });

  it('the CSR DNS names must equal the token DNS names', async () => {
    const token = await mint(ca, { subject: 'svc.test', sans: names });
    const error = await enrollDirect(token, ['svc.test', 'extra.test', '127.0.0.1']).catch((e) => e);
    // The CA's own refusal refuses the same request again: not worth the normal retry schedule.
    expect(error).toMatchObject({
      code: 'CA_REFUSED',
      details: { status: 403, fromCa: true, retryable: false },
    });
    expect(lastReason()).toMatch(/valid DNS names/);
  });

  it('the CSR IP addresses must equal the token IP addresses', async () => {
    const token = await mint(ca, { subject: 'svc.test', sans: names });
    const error = await enrollDirect(token, ['svc.test', '10.0.0.1']).catch((e) => e);
    expect(error).toMatchObject({ code: 'CA_REFUSED', details: { status: 403 } });
    expect(lastReason()).toMatch(/valid IP addresses/);
  });

  it.each([
    [60_000, /less than the authorized minimum/],
    [48 * 3_600_000, /more than the authorized maximum/],
  ])('a requested lifetime of %i ms outside the provisioner bounds is a 403', async (lifetimeMs, reason) => {
    const token = await mint(ca, { subject: 'svc.test', sans: names });
    const issuer = new StepCaIssuer({ caUrl: ca.url, rootPem: ca.rootPem, token, lifetimeMs });
    const error = await issuer.issue(await makeRequest(names), context()).catch((e) => e);
    expect(error).toMatchObject({ code: 'CA_REFUSED', details: { status: 403 } });
    expect(lastReason()).toMatch(reason);
  });
});

describe('renew, rekey and revoke rules', () => {
  async function enrolled() {
    return enrollDirect(await mint(ca, { subject: 'svc.test', sans: names }));
  }

  it('renew copies the certificate: same key, subject, SANs, extensions and duration', async () => {
    const { key, chainPem } = await enrolled();
    const renewed = await client.renew({ key, chainPem });
    const [a, b] = [parseCertificates(chainPem)[0]!, parseCertificates(renewed)[0]!];
    expect(b.info.serialNumber).not.toBe(a.info.serialNumber);
    expect(b.node.publicKey.export({ format: 'jwk' })).toEqual(a.node.publicKey.export({ format: 'jwk' }));
    for (const field of [
      'subject',
      'names',
      'extKeyUsage',
      'lifetimeMs',
      'subjectKeyId',
      'authorityKeyId',
    ] as const)
      expect(b.info[field]).toEqual(a.info[field]);
  });

  it('rekey certifies the new key and keeps the rest', async () => {
    const { key, chainPem } = await enrolled();
    const fresh = await PrivateKey.generate();
    const rekeyed = await client.rekey({ key, chainPem }, (await createCsr({ key: fresh, names })).pem);
    const leaf = parseCertificates(rekeyed)[0]!;
    expect(leaf.node.checkPrivateKey(fresh.keyObject)).toBe(true);
    expect(leaf.info.names).toEqual(parseCertificates(chainPem)[0]!.info.names);
  });

  it('renew without a client certificate or token is a 400', async () => {
    const error = await (await import('../../../src/issuers/step-ca/transport.js'))
      .caRequest({ method: 'POST', url: new URL(`${ca.url}/1.0/renew`), ca: ca.rootPem, timeoutMs: 5000 })
      .catch((e) => e);
    expect(error).toMatchObject({ code: 'CA_REFUSED', details: { status: 400 } });
    expect(lastReason()).toBe('missing client certificate');
  });

  it('an expired certificate is rejected in the mTLS handshake', async () => {
    const { key, chainPem } = await enrolled();
    offset = 25 * 3_600_000;
    try {
      await expect(client.renew({ key, chainPem })).rejects.toMatchObject({ code: 'ISSUER_UNAVAILABLE' });
      expect(lastReason()).toBe('client certificate rejected');
    } finally {
      offset = 0;
    }
  });

  it('renewal after expiry: the x5c token is refused unless the CA allows it', async () => {
    const { key, chainPem } = await enrolled();
    offset = 25 * 3_600_000;
    try {
      const token = () => mintRenewToken({ caUrl: new URL(ca.url), chainPem, key, now: Date.now() + offset });
      await expect(client.renewWithToken(await token())).rejects.toMatchObject({ code: 'TOKEN_REJECTED' });
      expect(lastReason()).toBe('certificate has expired');
      ca.allowRenewalAfterExpiry = true;
      const renewed = parseCertificates(await client.renewWithToken(await token()))[0]!;
      expect(renewed.node.checkPrivateKey(key.keyObject)).toBe(true);
    } finally {
      offset = 0;
      ca.allowRenewalAfterExpiry = false;
    }
  });

  it('the x5c token must be for the renew audience', async () => {
    const { key, chainPem } = await enrolled();
    const token = await mintRenewToken({
      caUrl: new URL('https://elsewhere.test'),
      chainPem,
      key,
      now: Date.now(),
    });
    await expect(client.renewWithToken(token)).rejects.toMatchObject({ code: 'TOKEN_REJECTED' });
    expect(lastReason()).toBe('error validating renew token: invalid audience claim (aud)');
  });

  it('passive revocation (mTLS) blocks renewal; revoking twice is a 400', async () => {
    const { key, chainPem } = await enrolled();
    const serialHex = parseCertificates(chainPem)[0]!.info.serialNumber;
    await client.revoke({ serialHex, reason: 'keyCompromise', client: { key, chainPem } });
    expect(ca.revoked.get(BigInt(`0x${serialHex}`).toString(10))).toBe(1);
    await expect(client.renew({ key, chainPem })).rejects.toMatchObject({ code: 'TOKEN_REJECTED' });
    expect(lastReason()).toBe('certificate has been revoked');
    await expect(
      client.revoke({ serialHex, reason: 'keyCompromise', client: { key, chainPem } }),
    ).rejects.toMatchObject({ code: 'CA_REFUSED', details: { status: 400 } });
  });

  it('a certificate can only revoke itself over mTLS (serial must match)', async () => {
    const mine = await enrolled();
    const other = await enrolled();
    const serialHex = parseCertificates(other.chainPem)[0]!.info.serialNumber;
    const error = await client.revoke({ serialHex, reason: 'unspecified', client: mine }).catch((e) => e);
    expect(error).toMatchObject({ code: 'CA_REFUSED', details: { status: 400 } });
    expect(lastReason()).toBe('serial number in client certificate different than body');
  });

  it('revocation with a token: the token subject must be the serial', async () => {
    const a = await enrolled();
    const b = await enrolled();
    const serialA = parseCertificates(a.chainPem)[0]!.info.serialNumber;
    const serialB = parseCertificates(b.chainPem)[0]!.info.serialNumber;
    const base = { caUrl: ca.url, rootFingerprint: ca.rootFingerprint, provisioner: ca.provisioner.name };
    const issuer = new StepCaIssuer({ caUrl: ca.url, rootPem: ca.rootPem });
    const forB = await mintRevokeToken({ ...base, key: ca.provisioner.privateJwk, serial: serialB });
    await expect(issuer.revokeWithToken(serialA, forB, 'superseded', context())).rejects.toMatchObject({
      code: 'TOKEN_REJECTED',
    });
    expect(lastReason()).toBe('token subject is not the serial being revoked');
    const forA = await mintRevokeToken({ ...base, key: ca.provisioner.privateJwk, serial: serialA });
    await issuer.revokeWithToken(serialA, forA, 'superseded', context());
    expect(ca.revoked.get(BigInt(`0x${serialA}`).toString(10))).toBe(4);
  });
});
