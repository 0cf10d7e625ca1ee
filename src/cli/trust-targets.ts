/**
 * Where `certkeeper trust` puts a root: the system trust store of Debian and its derivatives
 * (a `.crt` in /usr/local/share/ca-certificates, then `update-ca-certificates`: curl, OpenSSL,
 * most languages' default CA file) and NSS databases (`certutil`: Chromium's ~/.pki/nssdb,
 * Firefox profiles). Every path can be redirected (`sysroot`, explicit databases), so tests and
 * image builds never touch the real stores.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CertkeeperError } from '../errors.js';

export const FILE_PREFIX = 'certkeeper-';

/** The file and NSS nickname of a root: `certkeeper-<first 16 hex of its SHA-256>`. */
export function rootName(fingerprint: string): string {
  return `${FILE_PREFIX}${fingerprint.slice(0, 16)}`;
}

export interface SystemPaths {
  /** Where local CA certificates go (`.crt` files). */
  local: string;
  /** update-ca-certificates' arguments for these paths (none for the real system's defaults). */
  args: string[];
}

/** The system paths: the real ones, `systemDir` instead of the local directory, or all below `sysroot`. */
export function systemPaths(sysroot: string | undefined, systemDir: string | undefined): SystemPaths {
  if (sysroot) {
    const at = (path: string) => join(sysroot, path);
    const local = systemDir ?? at('/usr/local/share/ca-certificates');
    return {
      local,
      args: [
        '--certsconf',
        at('/etc/ca-certificates.conf'),
        '--certsdir',
        at('/usr/share/ca-certificates'),
        '--localcertsdir',
        local,
        '--etccertsdir',
        at('/etc/ssl/certs'),
        '--hooksdir',
        at('/etc/ca-certificates/update.d'),
      ],
    };
  }
  const local = systemDir ?? '/usr/local/share/ca-certificates';
  return { local, args: systemDir ? ['--localcertsdir', local] : [] };
}

/** An executable on PATH (and the sbin directories, where update-ca-certificates lives), or null. */
export function findExecutable(name: string, path: string | undefined): string | null {
  const dirs = [...(path ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin'];
  for (const dir of dirs) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {}
  }
  return null;
}

/** Runs a tool; its failure is an error naming the tool and what it printed (no secrets pass here). */
export function run(tool: string, args: string[], env: Readonly<Record<string, string | undefined>>): string {
  const result = spawnSync(tool, args, { encoding: 'utf8', timeout: 60_000, env: env as NodeJS.ProcessEnv });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  if (result.error || result.status !== 0) {
    throw new CertkeeperError(
      'TOOL_FAILED',
      `${tool} ${args[0] ?? ''} failed (${result.error?.message ?? `exit code ${result.status}`})${output ? `: ${output.split('\n').slice(-3).join(' / ')}` : ''}`,
    );
  }
  return output;
}

/**
 * The NSS databases to use: the ones given, else those that exist among ~/.pki/nssdb (Chromium
 * and other NSS users), Chromium's snap, and every Firefox profile (also the snap's).
 */
export function nssDatabases(given: string[] | undefined, home: string | undefined): string[] {
  if (given && given.length > 0) return given;
  if (!home) return [];
  const candidates = [join(home, '.pki/nssdb'), join(home, 'snap/chromium/current/.pki/nssdb')];
  for (const profiles of [
    join(home, '.mozilla/firefox'),
    join(home, 'snap/firefox/common/.mozilla/firefox'),
  ]) {
    try {
      for (const entry of readdirSync(profiles)) candidates.push(join(profiles, entry));
    } catch {}
  }
  return candidates.filter((dir) => existsSync(join(dir, 'cert9.db')));
}

/** The nicknames of the certificates in an NSS database that certkeeper put there. */
export function nssNicknames(
  certutil: string,
  db: string,
  env: Readonly<Record<string, string | undefined>>,
): string[] {
  const listing = run(certutil, ['-L', '-d', `sql:${db}`], env);
  return listing
    .split('\n')
    .map((line) => /^(certkeeper-[0-9a-f]{16})\s/.exec(line)?.[1])
    .filter((n): n is string => n !== undefined);
}
