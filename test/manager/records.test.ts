// The commit of a generation (src/manager/records.ts): the pointer write is the commit, and a
// holder whose issuance lease may have lapsed must not make it.
import { expect, it } from 'vitest';
import { parseCertificates } from '../../src/crypto/inspect.js';
import { PrivateKey } from '../../src/crypto/keys.js';
import { CertkeeperError } from '../../src/errors.js';
import { commitGeneration, type Generation, metaOf, readPointer } from '../../src/manager/records.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { makeLeaf, makePki } from '../support/pki.js';

async function generation(): Promise<Generation> {
  const pki = await makePki({ names: ['a.test'] });
  const key = await PrivateKey.generate();
  const leaf = await makeLeaf(pki.intermediate, { names: ['a.test'], key });
  const chainPem = leaf.certificate.pem + pki.intermediate.certificate.pem;
  const chain = parseCertificates(chainPem).map((c) => c.info);
  return { issuer: 'test', chainPem, key, info: chain[0]!, chain, storedAt: Date.now() };
}

const facts = { id: 'a', names: ['a.test'], keyType: 'ec-p256' as const, purpose: 'server' as const };

it('commits the pointer while the lease holds, and refuses to once it may have lapsed', async () => {
  const store = new MemoryStore();
  const first = await generation();
  await commitGeneration(store, 'a.test', first, metaOf(first, facts, Date.now()), null, {
    lease: new AbortController().signal,
  });
  expect((await readPointer(store, 'test', 'a.test'))?.serial).toBe(first.info.serialNumber);

  const second = await generation();
  const lapsed = new AbortController();
  lapsed.abort(new CertkeeperError('LOCK_LOST', 'lease lapsed'));
  await expect(
    commitGeneration(store, 'a.test', second, metaOf(second, facts, Date.now()), null, {
      lease: lapsed.signal,
    }),
  ).rejects.toMatchObject({ code: 'LOCK_LOST' });
  // What the next holder may have committed stays: here, the first generation.
  expect((await readPointer(store, 'test', 'a.test'))?.serial).toBe(first.info.serialNumber);
});
