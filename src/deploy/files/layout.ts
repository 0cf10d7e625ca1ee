/**
 * Which files a certificate's set holds and what goes in each: the names services expect
 * (certbot's `fullchain.pem` / `privkey.pem` / `chain.pem` / `cert.pem`), a combined key+chain
 * PEM (HAProxy's `crt`, MongoDB's `certificateKeyFile`), a trust bundle for clients and PKCS#12
 * for Java.
 * Rendering is pure: the writer decides where and how the bytes land.
 */

import { readFile } from 'node:fs/promises';
import { parseCertificatePems } from '../../crypto/pem.js';
import { CertkeeperError, describeCause, optionError } from '../../errors.js';
import type { DeployableGeneration } from '../target.js';

export const FILE_KINDS = ['fullchain', 'privkey', 'chain', 'cert', 'combined', 'trust', 'pkcs12'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

/** Absolute paths of a set's files, by kind (only the kinds the set has). */
export type FileSetPaths = Readonly<Partial<Record<FileKind, string>>>;

/**
 * Which files to write. The four certbot files are on by default (`false` leaves one out, a
 * string renames it); `combined`, `trust` and `pkcs12` are off unless given.
 */
export interface FileSetSpec {
  /** Leaf then intermediates. Default `fullchain.pem`. */
  fullchain?: string | false;
  /** The private key, PKCS#8 PEM. Default `privkey.pem`. */
  privkey?: string | false;
  /** The intermediates only (empty when the issuer has none). Default `chain.pem`. */
  chain?: string | false;
  /** The leaf only. Default `cert.pem`. */
  cert?: string | false;
  /** Leaf, intermediates, then the key in one file; `true` names it `combined.pem`. */
  combined?: string | boolean;
  /** CA certificates clients of this service should trust (PEM you give), written beside the rest. */
  trust?: { name?: string; pem: string };
  /**
   * PKCS#12 (leaf, intermediates, key) for Java and .NET, `keystore.p12` by default. The password
   * is read from `passwordFile` at every write (a Docker or Kubernetes secret), never an option.
   */
  pkcs12?: { name?: string; passwordFile: string };
}

/** One file of a rendered set. */
export interface RenderedFile {
  kind: FileKind;
  name: string;
  content: Buffer;
  /** Holds the private key: written with the key mode (0600 by default). */
  secret: boolean;
}

const DEFAULT_NAMES: Record<FileKind, string> = {
  fullchain: 'fullchain.pem',
  privkey: 'privkey.pem',
  chain: 'chain.pem',
  cert: 'cert.pem',
  combined: 'combined.pem',
  trust: 'trust.pem',
  pkcs12: 'keystore.p12',
};

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The file names of `spec` by kind, validated (plain names inside the set, no two the same). */
export function fileNames(spec: FileSetSpec = {}, owner = 'fileTarget'): Partial<Record<FileKind, string>> {
  const names: Partial<Record<FileKind, string>> = {};
  for (const kind of ['fullchain', 'privkey', 'chain', 'cert'] as const) {
    const value = spec[kind];
    if (value === false) continue;
    if (value !== undefined && typeof value !== 'string') {
      throw optionError(`files.${kind}`, 'must be a file name or false', owner);
    }
    names[kind] = value ?? DEFAULT_NAMES[kind];
  }
  if (spec.combined !== undefined && spec.combined !== false) {
    if (spec.combined !== true && typeof spec.combined !== 'string') {
      throw optionError('files.combined', 'must be a file name or a boolean', owner);
    }
    names.combined = spec.combined === true ? DEFAULT_NAMES.combined : spec.combined;
  }
  if (spec.trust !== undefined) {
    if (typeof spec.trust?.pem !== 'string') throw optionError('files.trust.pem', 'must be PEM text', owner);
    parseCertificatePems(spec.trust.pem, 'files.trust.pem');
    names.trust = spec.trust.name ?? DEFAULT_NAMES.trust;
  }
  if (spec.pkcs12 !== undefined) {
    if (typeof spec.pkcs12?.passwordFile !== 'string' || !spec.pkcs12.passwordFile.startsWith('/')) {
      throw optionError(
        'files.pkcs12.passwordFile',
        'must be the absolute path of a file holding the password',
        owner,
      );
    }
    names.pkcs12 = spec.pkcs12.name ?? DEFAULT_NAMES.pkcs12;
  }
  const seen = new Set<string>();
  for (const [kind, name] of Object.entries(names)) {
    // The set's own bookkeeping entries start with `..`; a name cannot reach them or leave the set.
    if (!SAFE_NAME.test(name)) {
      throw optionError(`files.${kind}`, 'must be a plain file name (letters, digits, . _ -)', owner);
    }
    if (seen.has(name)) throw optionError(`files.${kind}`, `repeats the file name ${name}`, owner);
    seen.add(name);
  }
  if (seen.size === 0) throw optionError('files', 'leaves no file to write', owner);
  return names;
}

/** The leaf and each intermediate as separate PEM blocks (normalised line endings). */
function splitChain(chainPem: string): string[] {
  return parseCertificatePems(chainPem).map((der) => {
    const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
    return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
  });
}

/** The password in `path`, without a trailing newline (as secrets are usually written). */
async function readPassword(path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
  } catch (error) {
    throw new CertkeeperError(
      'DEPLOY_FAILED',
      `PKCS#12 password file ${path} unreadable: ${describeCause(error)}`,
      {
        details: { passwordFile: path },
      },
    );
  }
}

/** Renders every file of the set for `generation`. */
export async function renderFileSet(
  names: Partial<Record<FileKind, string>>,
  spec: FileSetSpec,
  generation: DeployableGeneration,
): Promise<RenderedFile[]> {
  const [leaf, ...intermediates] = splitChain(generation.chainPem);
  if (leaf === undefined) throw new CertkeeperError('DEPLOY_FAILED', 'generation has no certificate');
  const keyPem = generation.key.toPem();
  const fullchain = leaf + intermediates.join('');
  const contents: Record<FileKind, () => Promise<Buffer> | Buffer> = {
    fullchain: () => Buffer.from(fullchain),
    privkey: () => Buffer.from(keyPem),
    chain: () => Buffer.from(intermediates.join('')),
    cert: () => Buffer.from(leaf),
    combined: () => Buffer.from(fullchain + keyPem),
    trust: () => Buffer.from(splitChain(spec.trust?.pem ?? '').join('')),
    // Loaded only when asked for: pkijs is ESM-only, and a CommonJS application that never writes
    // PKCS#12 should not need require(esm) to load the deploy entry.
    pkcs12: async () => {
      const { buildPkcs12 } = await import('./pkcs12.js');
      return buildPkcs12(generation, await readPassword(spec.pkcs12!.passwordFile));
    },
  };
  const files: RenderedFile[] = [];
  for (const kind of FILE_KINDS) {
    const name = names[kind];
    if (name === undefined) continue;
    const secret = kind === 'privkey' || kind === 'combined' || kind === 'pkcs12';
    files.push({ kind, name, content: await contents[kind](), secret });
  }
  return files;
}
