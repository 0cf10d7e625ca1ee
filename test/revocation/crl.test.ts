import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { x509 } from '../../src/crypto/x509.js';
import { checkCrl, crlUrls, parseCrl } from '../../src/revocation/crl.js';
import { type Authority, makeRoot } from '../support/pki.js';
import { leafWithCrl, makeCa, signCrl } from './support.js';

const HOUR = 3_600_000;
let ca: { root: Authority; intermediate: Authority };
let leaf: Awaited<ReturnType<typeof leafWithCrl>>;
const serial = () => leaf.certificate.info.serialNumber;
const check = (crl: Uint8Array | string, now = Date.now()) =>
  checkCrl(parseCrl(crl), leaf.certificate, ca.intermediate.certificate, now);

beforeAll(async () => {
  ca = await makeCa();
  leaf = await leafWithCrl(ca.intermediate, [
    'http://crl.test/1.crl',
    'ldap://crl.test/x',
    'https://crl.test/2.crl',
  ]);
});

describe('checkCrl', () => {
  it('good: a current CRL of the issuer that does not list the serial', async () => {
    const verdict = await check(await signCrl(ca.intermediate, { revoked: [{ serial: '0abc' }] }));
    expect(verdict.status).toBe('good');
  });

  it('revoked: the serial listed, with its reason and date', async () => {
    const at = new Date(Date.now() - 5 * 60_000);
    const crl = await signCrl(ca.intermediate, {
      revoked: [{ serial: serial(), reason: x509.X509CrlReason.keyCompromise, at }],
    });
    expect(await check(crl)).toMatchObject({ status: 'revoked', reason: 'keyCompromise' });
    expect((await check(crl)).status === 'revoked' && (await check(crl))).toMatchObject({
      revokedAt: new Date(Math.floor(at.getTime() / 1000) * 1000),
    });
  });

  it('a stale CRL still says revoked (revocation is permanent) but cannot say good', async () => {
    const old = { thisUpdate: new Date(Date.now() - 3 * HOUR), nextUpdate: new Date(Date.now() - HOUR) };
    expect(
      (await check(await signCrl(ca.intermediate, { ...old, revoked: [{ serial: serial() }] }))).status,
    ).toBe('revoked');
    expect(await check(await signCrl(ca.intermediate, old))).toMatchObject({
      status: 'unknown',
      why: 'stale',
    });
  });

  it('reads PEM as well as DER', async () => {
    const der = await signCrl(ca.intermediate, { revoked: [{ serial: serial() }] });
    const pem = `-----BEGIN X509 CRL-----\n${Buffer.from(der).toString('base64')}\n-----END X509 CRL-----\n`;
    expect((await check(pem)).status).toBe('revoked');
  });

  it.each([
    [
      'signed by another key in the issuer name (a forgery)',
      async () => signCrl(ca.intermediate, { signer: ca.root, revoked: [] }),
    ],
    ["another CA's CRL (the root's)", async () => signCrl(ca.root, {})],
    [
      'dated in the future',
      async () =>
        signCrl(ca.intermediate, {
          thisUpdate: new Date(Date.now() + HOUR),
          nextUpdate: new Date(Date.now() + 2 * HOUR),
        }),
    ],
    [
      'a delta CRL (a critical extension certkeeper cannot judge)',
      async () =>
        signCrl(ca.intermediate, {
          extensions: [new x509.Extension('2.5.29.27', true, new Uint8Array([2, 1, 1]))],
        }),
    ],
  ])('CRL_INVALID: %s', async (_what, make) => {
    await expect(check(await make())).rejects.toMatchObject({ code: 'CRL_INVALID' });
  });

  it('a forged CRL that lists the serial does not make it revoked', async () => {
    const forged = await signCrl(ca.intermediate, { signer: ca.root, revoked: [{ serial: serial() }] });
    await expect(check(forged)).rejects.toMatchObject({ code: 'CRL_INVALID' });
  });

  it('an issuer certificate that did not sign the certificate is refused', async () => {
    const stranger = await makeRoot('Stranger');
    const crl = parseCrl(await signCrl(ca.intermediate));
    await expect(checkCrl(crl, leaf.certificate, stranger.certificate, Date.now())).rejects.toMatchObject({
      code: 'CRL_INVALID',
    });
  });

  it('CRL_INVALID for bytes that are not a CRL', () => {
    expect(() => parseCrl(new Uint8Array([0x30, 0x03, 0x02, 0x01]))).toThrow(
      expect.objectContaining({ code: 'CRL_INVALID' }),
    );
    expect(() => parseCrl('<html>captive portal</html>')).toThrow(
      expect.objectContaining({ code: 'CRL_INVALID' }),
    );
  });
});

describe('a CRL made by OpenSSL', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ck-crl-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is read the way OpenSSL wrote it: the revoked serial and reason are found, another serial is good', async () => {
    writeFileSync(join(dir, 'ca.pem'), ca.intermediate.certificate.pem);
    writeFileSync(join(dir, 'ca.key'), ca.intermediate.key.toPem());
    const expiry = '301231235959Z';
    const revokedAt = `${new Date(Date.now() - 60_000).toISOString().replace(/[-:T]/g, '').slice(2, 14)}Z`;
    writeFileSync(
      join(dir, 'index.txt'),
      `R\t${expiry}\t${revokedAt},keyCompromise\t${serial().toUpperCase()}\tunknown\t/CN=svc.test\n`,
    );
    writeFileSync(join(dir, 'crlnumber'), '01\n');
    writeFileSync(
      join(dir, 'openssl.cnf'),
      `[ca]\ndefault_ca = d\n[d]\ndatabase = ${dir}/index.txt\ncrlnumber = ${dir}/crlnumber\n` +
        `certificate = ${dir}/ca.pem\nprivate_key = ${dir}/ca.key\ndefault_md = sha256\ndefault_crl_hours = 1\n`,
    );
    execFileSync(
      'openssl',
      ['ca', '-gencrl', '-config', join(dir, 'openssl.cnf'), '-out', join(dir, 'crl.pem')],
      { stdio: 'pipe' },
    );
    const pem = readFileSync(join(dir, 'crl.pem'), 'utf8');
    expect(await check(pem)).toMatchObject({ status: 'revoked', reason: 'keyCompromise' });
    const other = await leafWithCrl(ca.intermediate, []);
    expect(
      (await checkCrl(parseCrl(pem), other.certificate, ca.intermediate.certificate, Date.now())).status,
    ).toBe('good');
  });
});

describe('crlUrls', () => {
  it('lists the http(s) distribution points in order and ignores others', async () => {
    expect(crlUrls(leaf.certificate)).toEqual(['http://crl.test/1.crl', 'https://crl.test/2.crl']);
    expect(crlUrls((await leafWithCrl(ca.intermediate, [])).certificate)).toEqual([]);
  });
});
