/**
 * `certkeeper trust install|uninstall`: the embedded CA's root (or a CA certificate file) in the
 * system trust store and NSS databases, the way `mkcert -install` and `caddy trust` do, so a
 * developer's curl and browser trust the zero-configuration CA. See trust-targets.ts for where.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseCertificates } from '../crypto/inspect.js';
import { CertkeeperError, optionError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { type CliContext, type CommandResult, describe, EXIT, parseError, usage } from './command.js';
import { CA_OPTIONS, caRoots } from './root-command.js';
import { type OpenedStore, openStore, STORE_OPTIONS, STORE_USAGE } from './store-option.js';
import {
  FILE_PREFIX,
  findExecutable,
  nssDatabases,
  nssNicknames,
  rootName,
  run,
  systemPaths,
} from './trust-targets.js';

export const TRUST_USAGE = `Usage: certkeeper trust install|uninstall [options]

Adds the embedded CA's root (or --cert) to the system trust store (Debian and derivatives:
update-ca-certificates) and to NSS databases (certutil: Chromium's ~/.pki/nssdb, Firefox
profiles), or removes it. Writing the system store needs root. Node does not read the system
store by default: give it NODE_EXTRA_CA_CERTS=<file from export-root>.

The root comes from:
  --cert <file>          a CA certificate (PEM) instead of the store's CA
  --ca-name <name>       the store's InternalCA (default certkeeper-internal)
  --all                  every root it publishes (during a root rotation: two)
Where it goes:
  --no-system            leave the system trust store alone
  --system-dir <dir>     local CA directory (default /usr/local/share/ca-certificates)
  --sysroot <dir>        a directory standing for / : every system path below it
  --no-nss               leave NSS databases alone
  --nssdb <dir>          an NSS database (repeat; created if missing); default: those that exist
                         among ~/.pki/nssdb and Firefox profiles
uninstall only:
  --purge                every root certkeeper installed there, whatever the store holds
  -h, --help             this help

${STORE_USAGE}`;

interface Root {
  pem: string;
  name: string;
  subject: string;
}

function rootsFromFile(file: string, ctx: CliContext): Root[] {
  const chain = parseCertificates(readFileSync(resolve(ctx.cwd, file)), file);
  return chain.map((cert) => {
    if (!cert.info.isCA) throw optionError('--cert', `${file}: ${cert.info.subject} is not a CA certificate`);
    return { pem: cert.pem, name: rootName(cert.info.fingerprint256), subject: cert.info.subject };
  });
}

export async function trustCommand(argv: string[], ctx: CliContext): Promise<CommandResult> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    return parseError('trust', error, TRUST_USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) return { code: EXIT.OK, stdout: TRUST_USAGE, stderr: '' };
  const action = positionals[0];
  if (positionals.length !== 1 || (action !== 'install' && action !== 'uninstall'))
    return usage('trust', 'say install or uninstall', TRUST_USAGE);
  if (values.purge && action === 'install') return usage('trust', '--purge is for uninstall', TRUST_USAGE);
  if (values['no-system'] && values['no-nss'])
    return usage('trust', 'nothing to do with --no-system and --no-nss', TRUST_USAGE);
  // Paths as given on the command line, from where it was typed.
  for (const key of ['sysroot', 'system-dir'] as const)
    if (values[key]) values[key] = resolve(ctx.cwd, values[key]);
  if (values.nssdb) values.nssdb = values.nssdb.map((db) => resolve(ctx.cwd, db));

  let roots: Root[] = [];
  if (!values.purge) {
    let opened: OpenedStore | undefined;
    try {
      if (values.cert) roots = rootsFromFile(values.cert, ctx);
      else {
        opened = openStore(values, ctx, silentLogger);
        roots = (await caRoots(opened, values)).map((pem) => {
          const [cert] = parseCertificates(pem);
          return { pem, name: rootName(cert!.info.fingerprint256), subject: cert!.info.subject };
        });
      }
    } catch (error) {
      return { code: EXIT.FAILURE, stdout: '', stderr: `certkeeper trust: ${describe(error)}\n` };
    } finally {
      await opened?.store.close().catch(() => {});
    }
  }

  const out: string[] = [];
  const problems: string[] = [];
  const attempt = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (error) {
      problems.push(`${what}: ${describe(error)}`);
    }
  };
  const env = ctx.env;
  if (!values['no-system'])
    attempt('system trust store', () => out.push(...system(action, roots, values, env)));
  if (!values['no-nss']) attempt('NSS', () => out.push(...nss(action, roots, values, env)));
  if (action === 'install' && out.length > 0)
    out.push('Node: trust it with NODE_EXTRA_CA_CERTS=<file> (certkeeper export-root -o <file>).');
  const stderr = problems.map((p) => `certkeeper trust: ${p}\n`).join('');
  return {
    code: problems.length > 0 ? EXIT.FAILURE : EXIT.OK,
    stdout: out.map((l) => `${l}\n`).join(''),
    stderr,
  };
}

type Values = ReturnType<typeof parse>['values'];

function system(action: string, roots: Root[], values: Values, env: CliContext['env']): string[] {
  const tool = findExecutable('update-ca-certificates', env.PATH);
  if (!tool)
    throw new CertkeeperError(
      'NOT_SUPPORTED',
      'update-ca-certificates not found (Debian/Ubuntu: apt install ca-certificates); elsewhere, add the root by hand, or use --no-system',
    );
  const paths = systemPaths(values.sysroot, values['system-dir']);
  const lines: string[] = [];
  if (action === 'install') {
    mkdirSync(paths.local, { recursive: true, mode: 0o755 });
    for (const root of roots) {
      const file = join(paths.local, `${root.name}.crt`);
      writeFileSync(file, root.pem, { mode: 0o644 });
      lines.push(`installed ${root.subject} as ${file}`);
    }
    const summary = run(tool, paths.args, env)
      .split('\n')
      .find((l) => /added/.test(l));
    lines.push(`update-ca-certificates: ${summary ?? 'done'}`);
    return lines;
  }
  let names: string[];
  try {
    names = readdirSync(paths.local).filter((f) =>
      values.purge
        ? f.startsWith(FILE_PREFIX) && f.endsWith('.crt')
        : roots.some((r) => f === `${r.name}.crt`),
    );
  } catch {
    names = [];
  }
  for (const name of names) {
    rmSync(join(paths.local, name));
    lines.push(`removed ${join(paths.local, name)}`);
  }
  if (names.length === 0) return [`nothing of certkeeper's in ${paths.local}`];
  // --fresh: a removed file's link and bundle entry go (a plain run keeps them when nothing was added).
  const summary = run(tool, [...paths.args, '--fresh'], env)
    .split('\n')
    .find((l) => /added/.test(l));
  lines.push(`update-ca-certificates: ${summary ?? 'done'}`);
  return lines;
}

function nss(action: string, roots: Root[], values: Values, env: CliContext['env']): string[] {
  const given = values.nssdb;
  const dbs = nssDatabases(given, env.HOME);
  if (dbs.length === 0) return given ? [] : ['no NSS database found (give one with --nssdb)'];
  const certutil = findExecutable('certutil', env.PATH);
  if (!certutil)
    throw new CertkeeperError(
      'NOT_SUPPORTED',
      'certutil not found (Debian/Ubuntu: apt install libnss3-tools), or use --no-nss',
    );
  const lines: string[] = [];
  for (const db of dbs) {
    if (action === 'install') {
      mkdirSync(db, { recursive: true, mode: 0o700 });
      if (!readdirSync(db).includes('cert9.db'))
        run(certutil, ['-N', '-d', `sql:${db}`, '--empty-password'], env);
      for (const root of roots) {
        // Installed again under the same nickname: replaced, not duplicated.
        if (nssNicknames(certutil, db, env).includes(root.name))
          run(certutil, ['-D', '-d', `sql:${db}`, '-n', root.name], env);
        const file = join(tmpdir(), `${root.name}-${process.pid}.pem`);
        writeFileSync(file, root.pem, { mode: 0o600 });
        try {
          run(certutil, ['-A', '-d', `sql:${db}`, '-t', 'C,,', '-n', root.name, '-a', '-i', file], env);
        } finally {
          rmSync(file, { force: true });
        }
        lines.push(`trusted ${root.subject} in NSS database ${db} (as ${root.name})`);
      }
    } else {
      const present = nssNicknames(certutil, db, env).filter(
        (n) => values.purge || roots.some((r) => r.name === n),
      );
      for (const name of present) {
        run(certutil, ['-D', '-d', `sql:${db}`, '-n', name], env);
        lines.push(`removed ${name} from NSS database ${db}`);
      }
      if (present.length === 0) lines.push(`nothing of certkeeper's in NSS database ${db}`);
    }
  }
  return lines;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...STORE_OPTIONS,
      ...CA_OPTIONS,
      cert: { type: 'string' },
      'no-system': { type: 'boolean' },
      'system-dir': { type: 'string' },
      sysroot: { type: 'string' },
      'no-nss': { type: 'boolean' },
      nssdb: { type: 'string', multiple: true },
      purge: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
