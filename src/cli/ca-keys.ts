/**
 * The offline root key file of `certkeeper ca`: written once (never over an existing file),
 * readable by its owner only, and encrypted (PKCS#8, AES-256) when a passphrase is given, from a
 * file (`--passphrase-file`) or CERTKEEPER_CA_PASSPHRASE. Messages name files, never key bytes.
 */
import { createPrivateKey } from 'node:crypto';
import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PrivateKey } from '../crypto/keys.js';
import { CertkeeperError, optionError } from '../errors.js';
import type { CliContext } from './command.js';

export const PASSPHRASE_ENV = 'CERTKEEPER_CA_PASSPHRASE';

/** The passphrase from `--passphrase-file` (first line) or the environment; undefined: none. */
export function passphraseOf(file: string | undefined, ctx: CliContext): string | undefined {
  if (file) {
    let text: string;
    try {
      text = readFileSync(resolve(ctx.cwd, file), 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw optionError('--passphrase-file', `cannot be read (${reason})`);
    }
    const line = text.split(/\r?\n/)[0] ?? '';
    if (line === '') throw optionError('--passphrase-file', 'holds an empty passphrase');
    return line;
  }
  const env = ctx.env[PASSPHRASE_ENV];
  return env ? env : undefined;
}

/**
 * Creates the root key file (0600) before the CA exists, so a CA is never made whose key has
 * nowhere to go; refuses to replace a file. `write` fills it, `abandon` removes it.
 */
export function reserveRootKeyFile(path: string): {
  write(key: PrivateKey, passphrase: string | undefined): void;
  abandon(): void;
} {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new CertkeeperError(
      'STORE_IO',
      code === 'EEXIST'
        ? `${path} exists: the root key is never written over a file`
        : `cannot write the root key to ${path} (${code})`,
      { details: { path } },
    );
  }
  return {
    write(key, passphrase) {
      const pem = passphrase
        ? (key.keyObject.export({
            type: 'pkcs8',
            format: 'pem',
            cipher: 'aes-256-cbc',
            passphrase,
          }) as string)
        : key.toPem();
      writeFileSync(fd, pem);
      closeSync(fd);
    },
    abandon() {
      closeSync(fd);
      unlinkSync(path);
    },
  };
}

/** Reads the root key file, decrypting it with the passphrase when it is encrypted. */
export function readRootKey(path: string, passphrase: string | undefined): PrivateKey {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw optionError('--root-key', `cannot be read: ${path} (${reason})`);
  }
  const encrypted = pem.includes('ENCRYPTED PRIVATE KEY');
  if (encrypted && passphrase === undefined) {
    throw optionError('--root-key', `is encrypted: give --passphrase-file or ${PASSPHRASE_ENV}`);
  }
  try {
    return PrivateKey.fromKeyObject(createPrivateKey(encrypted ? { key: pem, passphrase } : pem));
  } catch {
    throw optionError(
      '--root-key',
      encrypted ? 'cannot be decrypted with that passphrase' : 'is not a private key',
    );
  }
}
