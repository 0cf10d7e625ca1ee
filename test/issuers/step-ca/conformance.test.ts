// StepCaIssuer against the Issuer conformance kit, with the test step-ca over real HTTPS: each
// issuance enrolls with a fresh one-time token (written to the token file, as an orchestrator
// would), renewal and revocation go over mTLS, and "unreachable" is the CA stopped.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StepCaIssuer } from '../../../src/issuers/step-ca/step-ca-issuer.js';
import { runIssuerConformance } from '../../../src/testing/index.js';
import { FakeStepCa } from '../../support/step-ca/ca.js';
import { mint } from '../../support/step-ca/harness.js';

await runIssuerConformance('StepCaIssuer (test step-ca)', async () => {
  const ca = await FakeStepCa.start();
  const dir = mkdtempSync(join(tmpdir(), 'certkeeper-step-kit-'));
  const tokenFile = join(dir, 'token');
  const options = { caUrl: ca.url, rootFingerprint: ca.rootFingerprint, token: { file: tokenFile } };
  return {
    issuer: new StepCaIssuer(options),
    domain: 'step-kit.test',
    wildcard: true,
    ip: '10.0.0.7',
    keyTypes: ['ec-p256', 'ec-p384', 'rsa-2048'],
    concurrent: false, // one token file: one enrollment at a time
    async prepare(request) {
      writeFileSync(tokenFile, await mint(ca, { subject: request.names[0]!, sans: request.names }));
    },
    isRevoked: async (serial) => ca.revoked.has(BigInt(`0x${serial}`).toString(10)),
    async unreachable() {
      await ca.stop();
      return new StepCaIssuer({ ...options, rootPem: ca.rootPem });
    },
    async cleanup() {
      await ca.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
