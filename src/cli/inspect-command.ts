/**
 * `certkeeper inspect <id | file>`: one certificate in detail, in the style of `step certificate
 * inspect`: from a PEM file (a chain, a CA bundle), or the certificate a store holds for an id
 * (its pointer's facts and its chain).
 */
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type CertificateInfo, parseCertificates } from '../crypto/inspect.js';
import { CertkeeperError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { type CliContext, type CommandResult, EXIT, failed, ok, parseError, usage } from './command.js';
import { relative, utcMinute } from './format.js';
import { statusJson } from './status-command.js';
import { openStore, STORE_OPTIONS, STORE_USAGE } from './store-option.js';
import { readCertificates, readChain } from './stored.js';

export const INSPECT_USAGE = `Usage: certkeeper inspect [options] <id | file>

A certificate in detail: a PEM file (every certificate in it), or the certificate the store holds
for a certificate id (the facts its pointer records, then its chain).

Options:
  --json          JSON instead of text
  -h, --help      this help

${STORE_USAGE}`;

function facts(info: CertificateInfo) {
  return {
    subject: info.subject,
    issuer: info.issuer,
    serial: info.serialNumber,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    names: info.names,
    keyType: info.keyType,
    isCA: info.isCA,
    pathLength: info.pathLength,
    keyUsage: info.keyUsage,
    extKeyUsage: info.extKeyUsage,
    subjectKeyId: info.subjectKeyId,
    authorityKeyId: info.authorityKeyId,
    fingerprint256: info.fingerprint256,
  };
}

function describe(info: CertificateInfo, index: number, total: number, now: number): string {
  const lines = [
    `Certificate ${index + 1} of ${total}${info.isCA ? ' (CA)' : ''}`,
    `  Subject:        ${info.subject}`,
    `  Issuer:         ${info.issuer}`,
    `  Serial:         ${info.serialNumber}`,
    `  Not before:     ${utcMinute(info.notBefore)} (${relative(info.notBefore.getTime() - now)})`,
    `  Not after:      ${utcMinute(info.notAfter)} (${relative(info.notAfter.getTime() - now)})`,
    `  Names:          ${info.names.join(', ') || '-'}`,
    `  Key:            ${info.keyType ?? 'unknown'}`,
    `  Key usage:      ${info.keyUsage?.join(', ') ?? '-'}`,
    `  Ext. key usage: ${info.extKeyUsage?.join(', ') ?? '-'}`,
    `  SHA-256:        ${info.fingerprint256}`,
  ];
  return `${lines.join('\n')}\n`;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export async function inspectCommand(argv: string[], ctx: CliContext): Promise<CommandResult> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    return parseError('inspect', error, INSPECT_USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) return ok(INSPECT_USAGE);
  if (positionals.length !== 1) return usage('inspect', 'give one certificate id or file', INSPECT_USAGE);
  const target = positionals[0]!;
  const now = ctx.now();
  const path = resolve(ctx.cwd, target);
  // A file given by path wins; an id is looked up in the store.
  if (isFile(path)) {
    try {
      const chain = parseCertificates(readFileSync(path), target).map((p) => p.info);
      if (values.json)
        return ok(`${JSON.stringify({ file: path, certificates: chain.map(facts) }, null, 2)}\n`);
      return ok(chain.map((info, i) => describe(info, i, chain.length, now)).join('\n'));
    } catch (error) {
      return failed('inspect', error);
    }
  }
  let opened: ReturnType<typeof openStore> | undefined;
  try {
    opened = openStore(values, ctx, silentLogger);
    const matches = (await readCertificates(opened.store)).filter((c) => c.id === target);
    if (matches.length === 0) {
      throw new CertkeeperError(
        'UNKNOWN_CERTIFICATE',
        `no file ${target} and no certificate with id "${target}" in ${opened.where}`,
      );
    }
    // Under several issuers (a configuration that changed issuer): the newest first.
    matches.sort((a, b) => (b.storedAt?.getTime() ?? 0) - (a.storedAt?.getTime() ?? 0));
    const stored = matches[0]!;
    const chain = await readChain(opened.store, stored);
    const infos = 'pem' in chain ? parseCertificates(chain.pem).map((p) => p.info) : [];
    const problem = 'problem' in chain ? chain.problem : stored.problem;
    const code = problem ? EXIT.FAILURE : EXIT.OK;
    if (values.json) {
      const body = {
        stored: statusJson(stored, now),
        certificates: infos.map(facts),
        problem,
        otherIssuers: matches.slice(1).map((m) => m.issuer),
      };
      return { code, stdout: `${JSON.stringify(body, null, 2)}\n`, stderr: '' };
    }
    const head = [
      `Certificate id ${stored.id} in ${opened.where}`,
      `  Issuer:         ${stored.issuer}`,
      `  Names:          ${stored.names.join(', ') || '-'}`,
      `  Purpose:        ${stored.purpose ?? '-'}`,
      `  Stored at:      ${utcMinute(stored.storedAt)}`,
      `  Previous:       ${stored.previousSerial ?? '-'}`,
      ...(stored.revoked.length ? [`  Revoked:        ${stored.revoked.join(', ')}`] : []),
      ...(matches.length > 1
        ? [
            `  Also under:     ${matches
              .slice(1)
              .map((m) => m.issuer)
              .join(', ')}`,
          ]
        : []),
      ...(problem ? [`  Problem:        ${problem.code}: ${problem.message}`] : []),
    ];
    const body = infos.map((info, i) => describe(info, i, infos.length, now)).join('\n');
    return { code, stdout: `${head.join('\n')}\n\n${body}`, stderr: '' };
  } catch (error) {
    return failed('inspect', error);
  } finally {
    await opened?.store.close().catch(() => {});
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { ...STORE_OPTIONS, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
}
