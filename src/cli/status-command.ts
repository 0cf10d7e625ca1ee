/**
 * `certkeeper status` (alias `list`): the certificates a store holds, as a table in the style of
 * `certbot certificates`, or JSON. Exit code 3 when one needs attention (expired, not yet valid,
 * or its stored entry damaged), so a cron job or CI step can alert on it.
 */
import { parseArgs } from 'node:util';
import { silentLogger } from '../logger.js';
import { type CliContext, type CommandResult, EXIT, failed, ok, parseError } from './command.js';
import { cell, relative, table, utcMinute } from './format.js';
import { openStore, STORE_OPTIONS, STORE_USAGE } from './store-option.js';
import { plannedRenewal, readCertificates, type StoredCertificate, stateOf } from './stored.js';

export const STATUS_USAGE = `Usage: certkeeper status [options]    (alias: list)

The certificates in the store: names, issuer, serial, not-after, planned renewal, and what is
wrong with the stored entry if anything is. The planned renewal is the default policy's (2/3 of
the lifetime); the running process may renew earlier (jitter, an issuer's renewal window, its
policy) and retries after failures, which only it knows (see its status page or metrics).

Options:
  --json          one JSON array instead of the table
  -h, --help      this help

${STORE_USAGE}
Exit codes: 0 all valid, 3 a certificate is expired, not yet valid or damaged, 1 failure, 2 usage.
`;

export function statusJson(c: StoredCertificate, now: number) {
  const planned = plannedRenewal(c);
  return {
    id: c.id,
    names: c.names,
    issuer: c.issuer,
    purpose: c.purpose,
    keyType: c.keyType,
    serial: c.serial,
    fingerprint256: c.fingerprint256,
    notBefore: c.notBefore?.toISOString() ?? null,
    notAfter: c.notAfter?.toISOString() ?? null,
    plannedRenewal: planned?.toISOString() ?? null,
    state: stateOf(c, now),
    storedAt: c.storedAt?.toISOString() ?? null,
    previousSerial: c.previousSerial,
    revoked: c.revoked,
    lastError: c.problem,
    key: c.key,
  };
}

function names(list: string[]): string {
  if (list.length === 0) return '-';
  return cell(list.length > 2 ? `${list.slice(0, 2).join(', ')} (+${list.length - 2})` : list.join(', '), 50);
}

export async function statusCommand(argv: string[], ctx: CliContext): Promise<CommandResult> {
  let values: ReturnType<typeof parse>['values'];
  try {
    ({ values } = parse(argv));
  } catch (error) {
    return parseError('status', error, STATUS_USAGE);
  }
  if (values.help) return ok(STATUS_USAGE);
  let opened: ReturnType<typeof openStore> | undefined;
  try {
    opened = openStore(values, ctx, silentLogger);
    const certificates = await readCertificates(opened.store);
    const now = ctx.now();
    const attention = certificates.some((c) => stateOf(c, now) !== 'valid');
    const code = attention ? EXIT.ATTENTION : EXIT.OK;
    if (values.json) {
      return {
        code,
        stdout: `${JSON.stringify(
          certificates.map((c) => statusJson(c, now)),
          null,
          2,
        )}\n`,
        stderr: '',
      };
    }
    if (certificates.length === 0) return ok('', `no certificates in ${opened.where}\n`);
    const rows = certificates.map((c) => {
      const planned = plannedRenewal(c);
      const state = stateOf(c, now);
      return [
        cell(c.id, 40),
        names(c.names),
        cell(c.issuer, 40),
        c.serial ?? '-',
        c.notAfter ? `${utcMinute(c.notAfter)} (${relative(c.notAfter.getTime() - now)})` : '-',
        planned && state === 'valid' ? `~${utcMinute(planned)}` : state === 'valid' ? '-' : 'due now',
        state,
        c.problem ? cell(`${c.problem.code}: ${c.problem.message}`) : '-',
      ];
    });
    const header = ['ID', 'NAMES', 'ISSUER', 'SERIAL', 'NOT AFTER', 'NEXT RENEWAL', 'STATE', 'LAST ERROR'];
    return { code, stdout: table(header, rows), stderr: '' };
  } catch (error) {
    return failed('status', error);
  } finally {
    await opened?.store.close().catch(() => {});
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: false,
    strict: true,
    options: { ...STORE_OPTIONS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
}
