/**
 * `certkeeper ca`: the embedded CA with its root offline, run on the admin machine that keeps the
 * root key (docs/operations.md, "The internal CA with its root offline"):
 *   init               a root (key to a file kept offline) and an intermediate into the store
 *   sign-intermediate  a new intermediate from the root key (renewal, or replacement with --reason)
 *   sign-crl           the root's CRL, signed with the root key and imported into the store
 *   status             whether the root is offline, the intermediate's end and state
 * Everything goes through InternalCA, so the state stays the one sealed record it always is.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isKeyType, type KeyType } from '../crypto/keys.js';
import { optionError } from '../errors.js';
import { InternalCA } from '../issuers/internal-ca.js';
import type { RevocationReason } from '../issuers/issuer.js';
import { silentLogger } from '../logger.js';
import { passphraseOf, readRootKey, reserveRootKeyFile } from './ca-keys.js';
import { type CliContext, type CommandResult, failed, ok, parseError, usage } from './command.js';
import { type OpenedStore, openStore, STORE_OPTIONS, STORE_USAGE } from './store-option.js';

export const CA_USAGE = `Usage: certkeeper ca <init|sign-intermediate|sign-crl|status> [options]

The embedded CA with its root offline: run these where the root key is kept.

  init                make the root and an intermediate; the root key goes to --root-key-out only
  sign-intermediate   a new intermediate signed with --root-key (before the old one is due; with
                      --reason the old one is revoked), and a fresh root CRL
  sign-crl            the root's CRL signed with --root-key, imported into the store (-o: also to a file)
  status              root offline or not, the intermediate's end and state (ok, due, unusable)

Options:
  --ca-name <name>            the InternalCA's name (default certkeeper-internal)
  --root-key-out <file>       init: where to write the root key (a new file, mode 0600)
  --root-key <file>           sign-intermediate, sign-crl: the root key file
  --passphrase-file <file>    encrypts (init) or decrypts the root key; else $CERTKEEPER_CA_PASSPHRASE
  --root-days <n>             init: root lifetime in days (default 3650)
  --intermediate-days <n>     intermediate lifetime in days (default 365)
  --key-type <type>           init: key type of the CA keys (default ec-p256)
  --crl-days <n>              validity of the root CRL in days (default 30)
  --reason <reason>           sign-intermediate: revoke the old intermediate (e.g. keyCompromise)
  -o, --out <file>            sign-crl: also write the CRL (PEM) to this file
  --json                      status: JSON
  -h, --help                  this help

${STORE_USAGE}`;

const DAY = 86_400_000;

function days(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw optionError(flag, 'must be a whole number of days >= 1');
  return n * DAY;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      ...STORE_OPTIONS,
      'ca-name': { type: 'string' },
      'root-key-out': { type: 'string' },
      'root-key': { type: 'string' },
      'passphrase-file': { type: 'string' },
      'root-days': { type: 'string' },
      'intermediate-days': { type: 'string' },
      'key-type': { type: 'string' },
      'crl-days': { type: 'string' },
      reason: { type: 'string' },
      out: { type: 'string', short: 'o' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

type Values = ReturnType<typeof parse>['values'];

function caOf(values: Values, ctx: CliContext): InternalCA {
  const keyType = values['key-type'];
  if (keyType !== undefined && !isKeyType(keyType))
    throw optionError('--key-type', 'is not a supported key type');
  const rootLifetimeMs = days(values['root-days'], '--root-days');
  const intermediateLifetimeMs = days(values['intermediate-days'], '--intermediate-days');
  return new InternalCA({
    ...(values['ca-name'] ? { name: values['ca-name'] } : {}),
    ...(keyType ? { keyType: keyType as KeyType } : {}),
    ...(rootLifetimeMs ? { rootLifetimeMs } : {}),
    ...(intermediateLifetimeMs ? { intermediateLifetimeMs } : {}),
    clock: { now: ctx.now, setTimeout: () => undefined, clearTimeout: () => {} },
  });
}

export async function caCommand(argv: string[], ctx: CliContext): Promise<CommandResult> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parse(argv));
  } catch (error) {
    return parseError('ca', error, CA_USAGE);
  }
  if (values.help) return ok(CA_USAGE);
  const [sub, ...extra] = positionals;
  if (!sub || !['init', 'sign-intermediate', 'sign-crl', 'status'].includes(sub))
    return usage('ca', sub ? `unknown subcommand "${sub}"` : 'a subcommand is required', CA_USAGE);
  if (extra.length > 0) return usage('ca', `${sub} takes no arguments`, CA_USAGE);
  if (sub === 'init' && !values['root-key-out']) return usage('ca', 'init needs --root-key-out', CA_USAGE);
  if ((sub === 'sign-intermediate' || sub === 'sign-crl') && !values['root-key'])
    return usage('ca', `${sub} needs --root-key`, CA_USAGE);
  let opened: OpenedStore | undefined;
  try {
    const ca = caOf(values, ctx);
    const crlValidityMs = days(values['crl-days'], '--crl-days');
    const passphrase = passphraseOf(values['passphrase-file'], ctx);
    opened = openStore(values, ctx, silentLogger);
    const store = opened.store;
    if (sub === 'init') {
      const out = resolve(ctx.cwd, values['root-key-out']!);
      const file = reserveRootKeyFile(out);
      let made: Awaited<ReturnType<InternalCA['initOffline']>>;
      try {
        made = await ca.initOffline({ store, ...(crlValidityMs ? { crlValidityMs } : {}) });
      } catch (error) {
        file.abandon();
        throw error;
      }
      file.write(made.rootKey, passphrase);
      return ok(made.rootCertificate, `root key written to ${out}: keep it offline\n`);
    }
    if (sub === 'status') {
      const status = await ca.intermediateStatus(store);
      const json = { ...status, notAfter: status.notAfter.toISOString() };
      if (values.json) return ok(`${JSON.stringify(json)}\n`);
      return ok(
        `root: ${status.rootOffline ? 'offline' : 'in the store'}\nintermediate: ${status.state}, ` +
          `expires ${json.notAfter}\n`,
      );
    }
    const rootKey = readRootKey(resolve(ctx.cwd, values['root-key']!), passphrase);
    if (sub === 'sign-intermediate') {
      const status = await ca.signIntermediate(rootKey, {
        store,
        ...(values.reason ? { reason: values.reason as RevocationReason } : {}),
        ...(crlValidityMs ? { crlValidityMs } : {}),
      });
      return ok(`intermediate ${status.fingerprint} until ${status.notAfter.toISOString()}\n`);
    }
    const crl = await ca.signRootCrl(rootKey, {
      store,
      ...(crlValidityMs ? { validityMs: crlValidityMs } : {}),
    });
    if (values.out) {
      writeFileSync(resolve(ctx.cwd, values.out), crl, { mode: 0o644 });
    }
    return ok(crl);
  } catch (error) {
    return failed('ca', error);
  } finally {
    await opened?.store.close().catch(() => {});
  }
}
