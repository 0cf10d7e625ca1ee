/**
 * Taking over a CA written by an older certkeeper: a certificate and a key per role
 * (`root.pem` + `root-key.pem`, `intermediate*.pem`, `root-next*`, `root-previous*`,
 * `retired-<serial>*`) and `revoked.json`, written one file at a time, so a crash could leave
 * them torn. What is consistent is kept; what can be rebuilt is rebuilt; nothing is overwritten:
 *
 * - the root (certificate matching its key, self-signed) is required: a root certificate cannot
 *   be rebuilt from its key, so `root.pem` missing beside `root-key.pem` is CA_ROOT_MISSING
 *   naming it (restore it from a backup);
 * - an intermediate that is missing, torn (new key, old certificate) or not signed by the root
 *   is rebuilt from the root;
 * - a next or previous root, or a retired intermediate, counts only with its key and its
 *   signature: one certificate planted without the key (the old `root-previous.pem` hole) is
 *   dropped;
 * - `revoked.json` entries are kept (it can only add revocations).
 * The files are deleted once the state record is committed (`record.ts`).
 */
import { parseCertificates } from '../../crypto/inspect.js';
import { PrivateKey } from '../../crypto/keys.js';
import { CertkeeperError, isCertkeeperError } from '../../errors.js';
import { layout } from '../../store/layout.js';
import type { Store } from '../../store/store.js';
import { type Authority, type CaProfile, checkAuthority, makeIntermediate } from './authority.js';
import { type CaState, revokedList } from './state.js';

const LEGACY = /^(root|intermediate|root-next|root-previous|retired-[0-9a-f]+)(-key)?\.pem$|^revoked\.json$/;

/** The files of the older layout among `names` (file names in the CA's directory). */
export function legacyFiles(names: readonly string[]): string[] {
  return names.filter((n) => LEGACY.test(n) && n !== 'root.pem' && n !== 'intermediate.pem');
}

export function caRootMissing(caName: string, missing: string[], why: string): CertkeeperError {
  return new CertkeeperError(
    'CA_ROOT_MISSING',
    `internal CA ${caName}: ${missing.join(', ')} missing: ${why}`,
    {
      details: { missing },
    },
  );
}

/** The CA of an older store as a state (version 0), or null when `names` hold none. */
export async function readLegacy(
  store: Store,
  profile: CaProfile,
  names: readonly string[],
  now: number,
): Promise<CaState | null> {
  if (!names.includes('root-key.pem')) return null;
  const name = profile.name;
  const read = async (role: string): Promise<Authority | null> => {
    const [cert, key] = await Promise.all([
      store.get(layout.ca(name, `${role}.pem`)),
      store.get(layout.ca(name, `${role}-key.pem`)),
    ]);
    if (!cert || !key) return null;
    try {
      return {
        certificate: parseCertificates(cert, `internal CA ${role}`)[0]!,
        key: PrivateKey.fromPem(key),
      };
    } catch (error) {
      throw new CertkeeperError('CA_CORRUPT', `internal CA ${name}: ${role} in the store is damaged`, {
        cause: error,
        details: { which: role },
      });
    }
  };
  /** `read` + `checkAuthority`, null for what does not pass (only the root is required). */
  const valid = async (role: string, signers: Parameters<typeof checkAuthority>[3]) => {
    try {
      const authority = await read(role);
      if (authority) checkAuthority(name, role, authority, signers);
      return authority;
    } catch (error) {
      if (isCertkeeperError(error, 'CA_CORRUPT')) return null;
      throw error;
    }
  };

  const root = await read('root');
  if (!root) {
    throw caRootMissing(
      name,
      ['root.pem'],
      'a root certificate cannot be rebuilt from its key; restore it from a backup',
    );
  }
  checkAuthority(name, 'root', root, 'self');
  const previous = await valid('root-previous', 'self');
  const next = await valid('root-next', 'self');
  const intermediate =
    (await valid('intermediate', [root.certificate])) ?? (await makeIntermediate(profile, root, now));
  const signers = [root.certificate, ...(previous ? [previous.certificate] : [])];
  const retired: Authority[] = [];
  for (const file of names) {
    const role = /^(retired-[0-9a-f]+)\.pem$/.exec(file)?.[1];
    const authority = role ? await valid(role, signers) : null;
    if (authority && authority.certificate.info.notAfter.getTime() > now) retired.push(authority);
  }
  const rawRevoked = await store.get(layout.ca(name, 'revoked.json'));
  let revoked: unknown = [];
  if (rawRevoked) {
    try {
      revoked = JSON.parse(Buffer.from(rawRevoked).toString('utf8'));
    } catch {
      revoked = null; // reported by revokedList
    }
  }
  return {
    version: 0,
    root,
    intermediate,
    next: next && next.certificate.info.fingerprint256 !== root.certificate.info.fingerprint256 ? next : null,
    previous,
    retired,
    revoked: revokedList(name, revoked),
    rootCrl: null,
  };
}
