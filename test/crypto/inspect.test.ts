import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createCertificate } from '../../src/crypto/certificate-builder.js';
import { inspectCertificate, parseCertificates } from '../../src/crypto/inspect.js';
import { PrivateKey } from '../../src/crypto/keys.js';
import { makePki } from '../support/pki.js';

describe('inspectCertificate', () => {
  it('reports every fact the lifecycle needs, agreeing with OpenSSL', async () => {
    const pki = await makePki({
      names: ['a.test', '*.b.test', '192.0.2.7'],
      extKeyUsage: ['serverAuth', 'clientAuth'],
    });
    const info = inspectCertificate(pki.leaf.certificate.pem);
    expect(info.dnsNames).toEqual(['a.test', '*.b.test']);
    expect(info.ipAddresses).toEqual(['192.0.2.7']);
    expect(info.commonName).toBe('a.test');
    expect(info.extKeyUsage).toEqual(['serverAuth', 'clientAuth']);
    expect(info.isCA).toBe(false);
    expect(info.keyType).toBe('ec-p256');
    expect(info.authorityKeyId).toBe(inspectCertificate(pki.intermediate.certificate.pem).subjectKeyId);
    expect(info.lifetimeMs).toBe(info.notAfter.getTime() - info.notBefore.getTime());

    const openssl = (...args: string[]) =>
      execFileSync('openssl', ['x509', '-noout', ...args], { input: pki.leaf.certificate.pem }).toString();
    expect(openssl('-fingerprint', '-sha256').split('=')[1]!.trim().replaceAll(':', '').toLowerCase()).toBe(
      info.fingerprint256,
    );
    expect(openssl('-serial').split('=')[1]!.trim().toLowerCase()).toBe(info.serialNumber.replace(/^00/, ''));
    const aki = openssl('-ext', 'authorityKeyIdentifier')
      .split('\n')[1]!
      .trim()
      .replace(/^keyid:/, '');
    expect(aki.replaceAll(':', '').toLowerCase()).toBe(info.authorityKeyId);

    const ca = inspectCertificate(pki.intermediate.certificate.pem);
    expect(ca.isCA).toBe(true);
    expect(ca.pathLength).toBe(0);
    expect(ca.basicConstraints).toBe(true);
    expect(ca.keyUsage).toEqual(['digitalSignature', 'keyCertSign', 'cRLSign']);
    expect([...ca.criticalExtensions].sort()).toEqual(['2.5.29.15', '2.5.29.19']);
    expect(ca.nameConstraints).toBeNull();
    expect(info.keyUsage).toEqual(['digitalSignature']);
    expect(openssl('-ext', 'keyUsage')).toMatch(/critical\n\s+Digital Signature\n/);
  });

  it('keeps the leading zero byte of a serial whose top bit is set (ARI certID)', async () => {
    const key = await PrivateKey.generate();
    const cert = await createCertificate({
      publicKey: key,
      commonName: 'x',
      serialNumber: '00ff01',
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 60_000),
    });
    expect(cert.info.serialNumber).toBe('00ff01');
  });

  it('reads DER input and reports a missing EKU extension as null', async () => {
    const pki = await makePki();
    expect(inspectCertificate(pki.leaf.certificate.der).fingerprint256).toBe(
      pki.leaf.certificate.info.fingerprint256,
    );
    expect(inspectCertificate(pki.root.certificate.pem).extKeyUsage).toBeNull();
  });

  it('rejects garbage inside a well-formed PEM block', () => {
    const pem = `-----BEGIN CERTIFICATE-----\n${Buffer.from('definitely not DER').toString('base64')}\n-----END CERTIFICATE-----\n`;
    expect(() => inspectCertificate(pem)).toThrowError(expect.objectContaining({ code: 'MALFORMED_PEM' }));
    expect(() => parseCertificates('')).toThrowError(expect.objectContaining({ code: 'MALFORMED_PEM' }));
  });
});
