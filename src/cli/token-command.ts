/**
 * `certkeeper token`: mints a one-time token on the host side, so a compose file or an
 * orchestrator can hand a container its enrollment token:
 *
 *   certkeeper token --ca-url https://ca:9000 --root root_ca.crt --provisioner admin \
 *     --key provisioner.json --password-file pass.txt api.internal 10.0.0.7
 *
 * The token goes to stdout and nothing else does; diagnostics go to stderr and never contain the
 * token, the key or the password.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isCertkeeperError, optionError, scrubSecrets } from '../errors.js';
import { normalizeFingerprint, rootFingerprint } from '../issuers/step-ca/bootstrap.js';
import { mintRevokeToken, mintToken } from '../issuers/step-ca/mint.js';
import type { CliContext, CommandResult } from './command.js';

export const TOKEN_USAGE = `Usage: certkeeper token [options] <name> [<name>...]

Mints a one-time token (JWK provisioner) for a certificate enrolled with a step-ca compatible CA.
The first <name> is the token's subject; every <name> and every --san is certified.

Options:
  --ca-url <url>          CA URL the service will use (the token's audience)       (required)
  --root <file>           root certificate PEM (its fingerprint is the token's sha)
  --fingerprint <hex>     root fingerprint, instead of --root
  --provisioner <name>    JWK provisioner name                                        (required)
  --key <file>            provisioner private key: JWK, encrypted JWE, or PEM         (required)
  --password-file <file>  password of an encrypted provisioner key
  --san <name>            one more name to certify (repeat)
  --revoke <serial>       mint a revocation token for this serial (hex) instead
  -h, --help              this help
`;

export type { CommandResult } from './command.js';

function usage(message: string): CommandResult {
  return { code: 2, stdout: '', stderr: `certkeeper token: ${message}\n\n${TOKEN_USAGE}` };
}

function readText(path: string, flag: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw optionError(flag, `names a ${what} that cannot be read: ${path} (${reason})`);
  }
}

export async function tokenCommand(argv: string[], ctx?: Pick<CliContext, 'now'>): Promise<CommandResult> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    // parseArgs quotes what was typed, which may be a secret given to the wrong option.
    return usage(scrubSecrets(error instanceof Error ? error.message : String(error)));
  }
  const { values, positionals } = parsed;
  if (values.help) return { code: 0, stdout: TOKEN_USAGE, stderr: '' };
  if (!values['ca-url']) return usage('--ca-url is required');
  if (!values.provisioner) return usage('--provisioner is required');
  if (!values.key) return usage('--key is required');
  if (!values.root && !values.fingerprint) return usage('--root or --fingerprint is required');
  if (values.revoke && positionals.length > 0) return usage('no <name> with --revoke');
  if (!values.revoke && positionals.length === 0) return usage('at least one <name> is required');
  try {
    let fingerprint = values.fingerprint ? normalizeFingerprint(values.fingerprint) : null;
    if (values.fingerprint && !fingerprint) return usage('--fingerprint must be 64 hex digits');
    if (values.root) {
      const fromRoot = rootFingerprint(readText(values.root, '--root', 'root certificate'));
      if (fingerprint && fingerprint !== fromRoot)
        return usage(`--fingerprint ${fingerprint} is not the fingerprint of --root (${fromRoot})`);
      fingerprint = fromRoot;
    }
    const password = values['password-file']
      ? readText(values['password-file'], '--password-file', 'password file').replace(/\r?\n$/, '')
      : undefined;
    const common = {
      ...(ctx ? { now: ctx.now() } : {}),
      caUrl: values['ca-url'],
      rootFingerprint: fingerprint!,
      provisioner: values.provisioner,
      key: readText(values.key, '--key', 'provisioner key'),
      password,
    };
    const token = values.revoke
      ? await mintRevokeToken({ ...common, serial: values.revoke })
      : await mintToken({ ...common, subject: positionals[0]!, sans: namesOf(positionals, values.san) });
    return { code: 0, stdout: `${token}\n`, stderr: '' };
  } catch (error) {
    const message = isCertkeeperError(error) ? `${error.message} (${error.code})` : 'unexpected failure';
    return { code: 1, stdout: '', stderr: `certkeeper token: ${message}\n` };
  }
}

/** Every positional name, then every --san, each once, in that order (the subject first). */
function namesOf(positionals: string[], sans: string[] = []): string[] {
  return [...new Set([...positionals, ...sans])];
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'ca-url': { type: 'string' },
      root: { type: 'string' },
      fingerprint: { type: 'string' },
      provisioner: { type: 'string' },
      key: { type: 'string' },
      'password-file': { type: 'string' },
      san: { type: 'string', multiple: true },
      revoke: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
