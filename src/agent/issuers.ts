/**
 * The issuers a configuration describes, built: the embedded CA, ACME (with its challenge
 * solvers and, for HTTP-01, the port-80 listener the agent runs), step-ca token enrollment, and
 * certificates another tool writes (sources/file-source.ts). An option a constructor refuses is
 * reported with the setting's path in the file, like every other configuration error.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Dns01Solver } from '../challenges/dns-01.js';
import { Http01Solver, startHttp01Server } from '../challenges/http-01.js';
import { ChallTestSrvProvider } from '../challenges/providers/challtestsrv.js';
import type { TsigAlgorithm } from '../challenges/providers/dns-wire.js';
import { Rfc2136Provider } from '../challenges/providers/rfc2136.js';
import type { ChallengeSolver } from '../challenges/solver.js';
import { isCertkeeperError, optionError } from '../errors.js';
import { AcmeIssuer } from '../issuers/acme/acme-issuer.js';
import { InternalCA } from '../issuers/internal-ca.js';
import type { Issuer } from '../issuers/issuer.js';
import { StepCaIssuer } from '../issuers/step-ca/step-ca-issuer.js';
import { FileSourceIssuer } from '../sources/file-source-issuer.js';
import type { Store } from '../store/store.js';
import type { AgentConfig, ChallengeConfig, IssuerConfig } from './config.js';

/** A listener the agent runs for an issuer (HTTP-01 answers); started with the agent. */
export interface IssuerListener {
  start(store: Store): Promise<{ port: number; close(): Promise<void> }>;
}

export interface BuiltIssuer {
  issuer: Issuer;
  /** What the agent runs for it while it is configured. */
  listeners: IssuerListener[];
}

export interface BuiltIssuers {
  /** By configuration id. */
  byId: Map<string, Issuer>;
  listeners: IssuerListener[];
}

/** Runs `build`, reporting an option it refuses at `path` of the configuration file. */
function at<T>(config: AgentConfig, path: string, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (isCertkeeperError(error, 'INVALID_OPTION'))
      throw optionError(path, `is refused: ${error.message}`, config.file, { file: config.file });
    throw error;
  }
}

function solver(config: AgentConfig, c: ChallengeConfig, path: string, listeners: IssuerListener[]) {
  if (c.type === 'http-01') {
    listeners.push({
      start: (store) => startHttp01Server({ store, port: c.port, host: c.host, redirect: false }),
    });
    return new Http01Solver();
  }
  const provider = c.rfc2136
    ? at(
        config,
        `${path}.rfc2136`,
        () =>
          new Rfc2136Provider({
            server: c.rfc2136!.server,
            tsig: {
              name: c.rfc2136!.keyName,
              secret: c.rfc2136!.secret,
              ...(c.rfc2136!.algorithm && { algorithm: c.rfc2136!.algorithm as TsigAlgorithm }),
            },
            ...(c.rfc2136!.zone && { zone: c.rfc2136!.zone }),
          }),
      )
    : new ChallTestSrvProvider(c.challtestsrv!);
  return at(
    config,
    path,
    () =>
      new Dns01Solver({
        provider,
        ...(c.resolvers && { resolvers: c.resolvers }),
        ...(c.propagationTimeoutMs && { propagationTimeoutMs: c.propagationTimeoutMs }),
      }),
  );
}

function readPem(config: AgentConfig, file: string, path: string): string {
  try {
    return readFileSync(resolve(dirname(config.file), file), 'utf8');
  } catch (error) {
    throw optionError(
      path,
      `names a file that cannot be read: ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      config.file,
      { file: config.file },
    );
  }
}

function build(config: AgentConfig, c: IssuerConfig, path: string, listeners: IssuerListener[]): Issuer {
  const base = dirname(config.file);
  switch (c.type) {
    case 'internal':
      return at(
        config,
        path,
        () =>
          new InternalCA({
            ...(c.name && { name: c.name }),
            ...(c.lifetimeMs && { lifetimeMs: c.lifetimeMs }),
            ...(c.keyType && { keyType: c.keyType }),
          }),
      );
    case 'acme': {
      const challenges: ChallengeSolver[] = c.challenges.map((ch, i) =>
        solver(config, ch, `${path}.challenges[${i}]`, listeners),
      );
      const ca = c.caFile?.map((f, i) => readPem(config, f, `${path}.caFile[${i}]`));
      return at(
        config,
        path,
        () =>
          new AcmeIssuer({
            directoryUrl: c.directory,
            agreeToTerms: c.agreeToTerms,
            challenges,
            allowHttp: c.allowHttp,
            clientAuth: c.clientAuth,
            ...(c.email && { contact: [`mailto:${c.email}`] }),
            ...(c.eab && { externalAccountBinding: { kid: c.eab.kid, hmacKey: c.eab.hmacKey } }),
            ...(c.profile && { profile: c.profile }),
            ...(ca && { ca }),
          }),
      );
    }
    case 'step-ca':
      return at(
        config,
        path,
        () =>
          new StepCaIssuer({
            caUrl: c.url,
            rekey: c.rekey,
            ...(c.rootFingerprint && { rootFingerprint: c.rootFingerprint }),
            ...(c.rootFile && { rootFile: resolve(base, c.rootFile) }),
            // A token file is read at each enrollment: an orchestrator may replace it.
            ...(c.token && { token: c.token }),
            ...(c.tokenFile && { token: { file: resolve(base, c.tokenFile) } }),
            ...(c.lifetimeMs && { lifetimeMs: c.lifetimeMs }),
          }),
      );
    case 'files':
      return at(
        config,
        path,
        () =>
          new FileSourceIssuer({
            id: c.id,
            chain: resolve(base, c.chain),
            key: resolve(base, c.key),
          }),
      );
  }
}

/** Builds issuer `index` of `config` (no I/O beyond reading configured files; nothing listens yet). */
export function buildIssuer(config: AgentConfig, index: number): BuiltIssuer {
  const listeners: IssuerListener[] = [];
  const issuer = build(config, config.issuers[index]!, `issuers[${index}]`, listeners);
  return { issuer, listeners };
}

/** Builds every issuer of `config`. */
export function buildIssuers(config: AgentConfig): BuiltIssuers {
  const listeners: IssuerListener[] = [];
  const byId = new Map<string, Issuer>();
  config.issuers.forEach((c, i) => {
    const built = buildIssuer(config, i);
    byId.set(c.id, built.issuer);
    listeners.push(...built.listeners);
  });
  return { byId, listeners };
}
