/**
 * Reading a certificate and its key as another tool wrote them (certbot's `live/<name>/`
 * symlinks, a Kubernetes secret volume, Docker secrets). The two files are written separately,
 * so a reader can see a new chain with the old key, or a file cut short: a pair is only taken
 * when both parse, the key is the leaf's, and the chain is in order and within its validity.
 * Both files are read twice and must read the same both times, so a pair caught between two
 * writes (or between a symlink flip and the next) is not taken either.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseCertificates } from '../crypto/inspect.js';
import { PrivateKey } from '../crypto/keys.js';
import { validateBundle } from '../crypto/validate.js';
import { CertkeeperError, isCertkeeperError } from '../errors.js';

export interface PairFiles {
  chain: string;
  key: string;
}

export interface ReadPair {
  chainPem: string;
  key: PrivateKey;
  serial: string;
  fingerprint256: string;
  notAfter: Date;
  /** SHA-256 over both files' bytes: what "changed" means. */
  digest: string;
}

async function readBoth(files: PairFiles): Promise<[Buffer, Buffer]> {
  try {
    return await Promise.all([readFile(files.chain), readFile(files.key)]);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new CertkeeperError('ISSUER_UNAVAILABLE', `cannot read ${files.chain} and ${files.key} (${code})`, {
      details: { chainFile: files.chain, keyFile: files.key, retryable: true },
    });
  }
}

export function digestOf(chain: Uint8Array, key: Uint8Array): string {
  return createHash('sha256').update(chain).update('\0').update(key).digest('hex');
}

/**
 * The pair the files hold now, validated; throws ISSUER_UNAVAILABLE (retryable: the writer is
 * not done) naming both files when they do not yet make a valid pair. Messages never carry the
 * key's content.
 */
export async function readPair(files: PairFiles, now: number): Promise<ReadPair> {
  const [chain, key] = await readBoth(files);
  const [chainAgain, keyAgain] = await readBoth(files);
  const details = { chainFile: files.chain, keyFile: files.key, retryable: true };
  if (!chain.equals(chainAgain) || !key.equals(keyAgain))
    throw new CertkeeperError('ISSUER_UNAVAILABLE', `${files.chain} or ${files.key} changed while read`, {
      details,
    });
  let verdict: ReturnType<typeof validateBundle>;
  let privateKey: PrivateKey;
  try {
    privateKey = PrivateKey.fromPem(key);
    verdict = validateBundle({ key: privateKey, chain, now: new Date(now) });
  } catch (error) {
    const why = isCertkeeperError(error) ? error.code : 'unreadable';
    throw new CertkeeperError(
      'ISSUER_UNAVAILABLE',
      `${files.chain} and ${files.key} are not a certificate and its key yet (${why})`,
      { details: { ...details, problem: why } },
    );
  }
  if (!verdict.ok)
    throw new CertkeeperError(
      'ISSUER_UNAVAILABLE',
      `${files.chain} and ${files.key} are not a valid pair yet (${verdict.error.code})`,
      { details: { ...details, problem: verdict.error.code } },
    );
  return {
    chainPem: parseCertificates(chain)
      .map((c) => c.pem)
      .join(''),
    key: privateKey,
    serial: verdict.leaf.serialNumber,
    fingerprint256: verdict.leaf.fingerprint256,
    notAfter: verdict.leaf.notAfter,
    digest: digestOf(chain, key),
  };
}
