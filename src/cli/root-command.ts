/**
 * `certkeeper export-root`: the embedded CA's root certificate (PEM), for clients to trust. Read
 * through the InternalCA from its state record (checked, and authenticated where the store is
 * encrypted), never from the readable `root.pem` copy beside it. A store without that CA is an
 * error: this command never creates one.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseCertificates } from '../crypto/inspect.js';
import { CertkeeperError, isCertkeeperError } from '../errors.js';
import { InternalCA } from '../issuers/internal-ca.js';
import { silentLogger } from '../logger.js';
import { layout } from '../store/layout.js';
import { type CliContext, type CommandResult, failed, ok, parseError, usage } from './command.js';
import { type OpenedStore, openStore, STORE_OPTIONS, STORE_USAGE, type StoreValues } from './store-option.js';

export const EXPORT_ROOT_USAGE = `Usage: certkeeper export-root [options]

The embedded CA's root certificate (PEM) on standard output, or in a file.

Options:
  --ca-name <name>   the InternalCA's name (default certkeeper-internal)
  --all              every root clients should trust now (during a root rotation: two)
  -o, --out <file>   write to this file instead of standard output
  -h, --help         this help

${STORE_USAGE}`;

export const CA_OPTIONS = {
  'ca-name': { type: 'string' },
  all: { type: 'boolean' },
} as const;

/** The roots of the store's embedded CA: the issuing root, or with `all` every published one. */
export async function caRoots(
  opened: OpenedStore,
  values: StoreValues & { 'ca-name'?: string; all?: boolean },
): Promise<string[]> {
  const name = values['ca-name'] ?? 'certkeeper-internal';
  const ca = new InternalCA({ name });
  // Nothing of that CA in the store: it would make a new one. Say so instead.
  if ((await opened.store.list(layout.caDir(name))).length === 0) {
    throw new CertkeeperError(
      'CA_ROOT_MISSING',
      `no embedded CA named ${name} in ${opened.where} (a manager creates it on first use; --ca-name?)`,
    );
  }
  try {
    return values.all ? await ca.publishedRoots(opened.store) : [await ca.rootCertificate(opened.store)];
  } catch (error) {
    if (isCertkeeperError(error, 'STORE_CORRUPT') && !opened.keyed) {
      throw new CertkeeperError(
        'STORE_CORRUPT',
        `the CA's state in ${opened.where} is sealed: give its encryption key (--encryption-key-file or CERTKEEPER_ENCRYPTION_KEY)`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** The SHA-256 fingerprint (hex) and common name of a root PEM. */
export function rootFacts(pem: string): { fingerprint: string; subject: string } {
  const [root] = parseCertificates(pem, 'root certificate');
  return { fingerprint: root!.info.fingerprint256, subject: root!.info.subject };
}

export async function exportRootCommand(argv: string[], ctx: CliContext): Promise<CommandResult> {
  let values: ReturnType<typeof parse>['values'];
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch (error) {
    return parseError('export-root', error, EXPORT_ROOT_USAGE);
  }
  if (values.help) return ok(EXPORT_ROOT_USAGE);
  if (positionals.length > 0) return usage('export-root', 'takes no arguments', EXPORT_ROOT_USAGE);
  let opened: OpenedStore | undefined;
  try {
    opened = openStore(values, ctx, silentLogger);
    const pem = (await caRoots(opened, values)).join('');
    if (!values.out) return ok(pem);
    const out = resolve(ctx.cwd, values.out);
    // A certificate is public: world-readable is what a trust store file needs.
    writeFileSync(out, pem, { mode: 0o644 });
    return ok('', `wrote ${out}\n`);
  } catch (error) {
    return failed('export-root', error);
  } finally {
    await opened?.store.close().catch(() => {});
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...STORE_OPTIONS,
      ...CA_OPTIONS,
      out: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
