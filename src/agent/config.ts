/**
 * The agent's configuration: its schema and its validation. A file is read (config-file.ts),
 * environment overrides and secret files applied (config-env.ts), then checked here whole, before
 * anything starts: every problem is an INVALID_OPTION error naming the file and the setting's
 * path in it. Issuers and targets are only described here; agent/issuers.ts builds them.
 */

import { dirname } from 'node:path';
import { KEY_TYPES, type KeyType } from '../crypto/keys.js';
import { parseNames } from '../crypto/names.js';
import type { CertificatePurpose } from '../issuers/issuer.js';
import { FieldReader, join, type Plain } from './config-read.js';
import { type TargetSpec, targetSpec } from './target-specs.js';

export interface StoreConfig {
  /** `file:<dir>` or `<dir>`, `redis://…`, `rediss://…`, `postgres://…` (as the CLI's `--store`). */
  url: string;
  /** Encryption keys at rest (`[id:]base64`, comma- or line-separated). */
  encryptionKey?: string;
  /** `none`: a shared store holds private keys unencrypted (explicitly chosen). */
  encryption?: 'none';
  redisPrefix?: string;
  pgTable?: string;
  pgSchema?: string;
}

export interface InternalIssuerConfig {
  type: 'internal';
  id: string;
  name?: string;
  lifetimeMs?: number;
  keyType?: KeyType;
}

export type ChallengeConfig =
  | { type: 'http-01'; port: number; host?: string }
  | {
      type: 'dns-01';
      rfc2136?: { server: string; keyName: string; secret: string; algorithm?: string; zone?: string };
      challtestsrv?: string;
      resolvers?: string[];
      propagationTimeoutMs?: number;
    };

export interface AcmeIssuerConfig {
  type: 'acme';
  id: string;
  directory: string;
  email?: string;
  agreeToTerms: boolean;
  eab?: { kid: string; hmacKey: string };
  challenges: ChallengeConfig[];
  profile?: string;
  /** PEM file(s) of roots trusted for the CA's own HTTPS endpoint (a private CA). */
  caFile?: string[];
  allowHttp: boolean;
  clientAuth: boolean;
}

export interface StepCaIssuerConfig {
  type: 'step-ca';
  id: string;
  url: string;
  rootFingerprint?: string;
  rootFile?: string;
  token?: string;
  tokenFile?: string;
  lifetimeMs?: number;
  rekey: boolean;
}

export interface FilesIssuerConfig {
  type: 'files';
  id: string;
  /** Path of the chain (leaf first); `{id}` stands for the certificate's id. */
  chain: string;
  /** Path of the private key; `{id}` stands for the certificate's id. */
  key: string;
}

export type IssuerConfig = InternalIssuerConfig | AcmeIssuerConfig | StepCaIssuerConfig | FilesIssuerConfig;

export interface CertificateConfig {
  id: string;
  names: string[];
  /** Ids of the issuers to try, in order. */
  issuers: string[];
  keyType?: KeyType;
  purpose: CertificatePurpose;
  /** File-and-reload deploy targets (agent/target-specs.ts). */
  targets: TargetSpec[];
}

export interface AgentConfig {
  /** The file it was read from, for messages. */
  file: string;
  store: StoreConfig;
  issuers: IssuerConfig[];
  certificates: CertificateConfig[];
  health?: { port: number; host: string };
  /** How often every stored pointer is re-read to adopt other processes' work (0: off). */
  reconcileIntervalMs?: number;
}

const TOP = ['store', 'issuers', 'certificates', 'health', 'reconcileInterval'] as const;
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ID_BOUND = 'must be 1-64 of [A-Za-z0-9._-], starting with a letter or digit';
const CERT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CERT_ID_BOUND = 'must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit';
const DEFAULT_ISSUER: InternalIssuerConfig = { type: 'internal', id: 'internal' };

export function validateConfig(raw: unknown, file: string): AgentConfig {
  const r: FieldReader = new FieldReader(file);
  const top = r.object(raw ?? {}, '', TOP);
  if (top.store === undefined) r.fail('store', 'is required (file:<dir>, redis://…, postgres://…)');
  const store = storeConfig(r, top.store);
  const issuers =
    top.issuers === undefined
      ? [DEFAULT_ISSUER]
      : r.array(top.issuers, 'issuers').map((v, i) => issuerConfig(r, v, `issuers[${i}]`));
  if (issuers.length === 0)
    r.fail('issuers', 'must list at least one issuer (or be left out: the internal CA)');
  const issuerIds = new Set<string>();
  issuers.forEach((issuer, i) => {
    if (issuerIds.has(issuer.id)) r.fail(`issuers[${i}].id`, `duplicates id "${issuer.id}"`);
    issuerIds.add(issuer.id);
  });
  if (top.certificates === undefined) r.fail('certificates', 'is required');
  const certificates = r
    .array(top.certificates, 'certificates')
    .map((v, i) => certificateConfig(r, v, `certificates[${i}]`, issuers));
  if (certificates.length === 0) r.fail('certificates', 'must list at least one certificate');
  const ids = new Set<string>();
  certificates.forEach((c, i) => {
    if (ids.has(c.id)) r.fail(`certificates[${i}].id`, `duplicates id "${c.id}"`);
    ids.add(c.id);
  });
  let health: AgentConfig['health'];
  if (top.health !== undefined) {
    const h = r.object(top.health, 'health', ['port', 'host']);
    const port = r.integer(h.port, 'health.port', 0, 65_535);
    if (port === undefined) r.fail('health.port', 'is required when health is given');
    health = { port, host: r.optionalString(h.host, 'health.host') ?? '0.0.0.0' };
  }
  let reconcileIntervalMs: number | undefined;
  if (top.reconcileInterval !== undefined && top.reconcileInterval !== 0)
    reconcileIntervalMs = r.duration(top.reconcileInterval, 'reconcileInterval');
  else if (top.reconcileInterval === 0) reconcileIntervalMs = 0;
  return {
    file,
    store,
    issuers,
    certificates,
    ...(health ? { health } : {}),
    ...(reconcileIntervalMs !== undefined && { reconcileIntervalMs }),
  };
}

function storeConfig(r: FieldReader, value: unknown): StoreConfig {
  const s =
    typeof value === 'string'
      ? { url: value }
      : r.object(value, 'store', [
          'url',
          'encryptionKey',
          'encryption',
          'redisPrefix',
          'pgTable',
          'pgSchema',
        ]);
  const url = r.string(s.url, 'store.url');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^(rediss?|postgres(ql)?):\/\//i.test(url))
    r.fail('store.url', 'has an unknown scheme (file:<dir>, redis://, rediss://, postgres://)');
  const shared = /^(rediss?|postgres(ql)?):\/\//i.test(url);
  const out: StoreConfig = { url };
  if (s.encryptionKey !== undefined) out.encryptionKey = r.string(s.encryptionKey, 'store.encryptionKey');
  if (s.encryption !== undefined)
    out.encryption = r.oneOf(s.encryption, 'store.encryption', ['none'] as const);
  if (out.encryption && out.encryptionKey)
    r.fail('store.encryption', 'is none while store.encryptionKey is given: give one');
  if (shared && !out.encryption && !out.encryptionKey)
    r.fail(
      'store.encryptionKey',
      'is required for a shared store (or store.encryption: none to keep private keys unencrypted)',
    );
  const name = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
  if (s.redisPrefix !== undefined) out.redisPrefix = r.string(s.redisPrefix, 'store.redisPrefix');
  if (s.pgTable !== undefined)
    out.pgTable = r.string(s.pgTable, 'store.pgTable', name, 'must be an SQL name');
  if (s.pgSchema !== undefined)
    out.pgSchema = r.string(s.pgSchema, 'store.pgSchema', name, 'must be an SQL name');
  return out;
}

const KNOWN: Record<IssuerConfig['type'], readonly string[]> = {
  internal: ['type', 'id', 'name', 'lifetime', 'keyType'],
  acme: [
    'type',
    'id',
    'directory',
    'email',
    'agreeToTerms',
    'eab',
    'challenges',
    'profile',
    'caFile',
    'allowHttp',
    'clientAuth',
  ],
  'step-ca': ['type', 'id', 'url', 'rootFingerprint', 'rootFile', 'token', 'tokenFile', 'lifetime', 'rekey'],
  files: ['type', 'id', 'chain', 'key'],
};

function issuerConfig(r: FieldReader, value: unknown, path: string): IssuerConfig {
  const type = r.oneOf(
    (value as Plain | null)?.type,
    join(path, 'type'),
    Object.keys(KNOWN) as IssuerConfig['type'][],
  );
  const v = r.object(value, path, KNOWN[type]);
  const id = r.string(v.id, join(path, 'id'), ID, ID_BOUND);
  const p = (key: string) => join(path, key);
  switch (type) {
    case 'internal':
      return {
        type,
        id,
        ...(v.name !== undefined && {
          name: r.string(v.name, p('name'), /^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be 1-64 of [a-z0-9._-]'),
        }),
        ...(v.lifetime !== undefined && { lifetimeMs: r.duration(v.lifetime, p('lifetime')) }),
        ...(v.keyType !== undefined && { keyType: r.oneOf(v.keyType, p('keyType'), KEY_TYPES) }),
      };
    case 'acme': {
      const directory = r.string(v.directory, p('directory'), /^https?:\/\//, 'must be an https:// URL');
      const allowHttp = r.boolean(v.allowHttp, p('allowHttp'), false);
      if (directory.startsWith('http:') && !allowHttp)
        r.fail(p('directory'), 'must be https (an http: directory needs allowHttp: true)');
      if (typeof v.agreeToTerms !== 'boolean')
        r.fail(p('agreeToTerms'), "is required: true agrees to the CA's terms, false for a CA that has none");
      let eab: AcmeIssuerConfig['eab'];
      if (v.eab !== undefined) {
        const e = r.object(v.eab, p('eab'), ['kid', 'hmacKey']);
        eab = { kid: r.string(e.kid, p('eab.kid')), hmacKey: r.string(e.hmacKey, p('eab.hmacKey')) };
      }
      const list = r.array(v.challenges, p('challenges'));
      if (list.length === 0) r.fail(p('challenges'), 'must list at least one challenge');
      const challenges = list.map((c, i) => challengeConfig(r, c, p(`challenges[${i}]`)));
      const types = challenges.map((c) => c.type);
      if (new Set(types).size !== types.length) r.fail(p('challenges'), 'must not repeat a challenge type');
      return {
        type,
        id,
        directory,
        agreeToTerms: v.agreeToTerms,
        challenges,
        allowHttp,
        clientAuth: r.boolean(v.clientAuth, p('clientAuth'), false),
        ...(v.email !== undefined && {
          email: r.string(v.email, p('email'), /^[^@\s:]+@[^@\s]+$/, 'must be an e-mail address'),
        }),
        ...(eab && { eab }),
        ...(v.profile !== undefined && { profile: r.string(v.profile, p('profile')) }),
        ...(v.caFile !== undefined && { caFile: r.strings(v.caFile, p('caFile')) }),
      };
    }
    case 'step-ca': {
      const url = r.string(v.url, p('url'), /^https:\/\//, 'must be an https:// URL');
      if (v.rootFingerprint === undefined && v.rootFile === undefined)
        r.fail(p('rootFingerprint'), 'or rootFile is required (the CA root is pinned)');
      if (v.token !== undefined && v.tokenFile !== undefined)
        r.fail(p('tokenFile'), `and ${p('token')} are both given: give one`);
      return {
        type,
        id,
        url,
        rekey: r.boolean(v.rekey, p('rekey'), false),
        ...(v.rootFingerprint !== undefined && {
          rootFingerprint: r.string(v.rootFingerprint, p('rootFingerprint')),
        }),
        ...(v.rootFile !== undefined && { rootFile: r.string(v.rootFile, p('rootFile')) }),
        ...(v.token !== undefined && { token: r.string(v.token, p('token')) }),
        ...(v.tokenFile !== undefined && { tokenFile: r.string(v.tokenFile, p('tokenFile')) }),
        ...(v.lifetime !== undefined && { lifetimeMs: r.duration(v.lifetime, p('lifetime')) }),
      };
    }
    case 'files':
      return { type, id, chain: r.string(v.chain, p('chain')), key: r.string(v.key, p('key')) };
  }
}

function challengeConfig(r: FieldReader, value: unknown, path: string): ChallengeConfig {
  const type = r.oneOf((value as Plain | null)?.type, join(path, 'type'), ['http-01', 'dns-01'] as const);
  if (type === 'http-01') {
    const c = r.object(value, path, ['type', 'port', 'host']);
    return {
      type,
      port: r.integer(c.port, join(path, 'port'), 0, 65_535) ?? 80,
      ...(c.host !== undefined && { host: r.string(c.host, join(path, 'host')) }),
    };
  }
  const c = r.object(value, path, ['type', 'rfc2136', 'challtestsrv', 'resolvers', 'propagationTimeout']);
  if ((c.rfc2136 === undefined) === (c.challtestsrv === undefined))
    r.fail(join(path, 'rfc2136'), 'or challtestsrv: give exactly one DNS provider');
  const out: ChallengeConfig = { type };
  if (c.rfc2136 !== undefined) {
    const q = join(path, 'rfc2136');
    const d = r.object(c.rfc2136, q, ['server', 'keyName', 'secret', 'algorithm', 'zone']);
    out.rfc2136 = {
      server: r.string(d.server, join(q, 'server')),
      keyName: r.string(d.keyName, join(q, 'keyName')),
      secret: r.string(d.secret, join(q, 'secret')),
      ...(d.algorithm !== undefined && { algorithm: r.string(d.algorithm, join(q, 'algorithm')) }),
      ...(d.zone !== undefined && { zone: r.string(d.zone, join(q, 'zone')) }),
    };
  }
  if (c.challtestsrv !== undefined)
    out.challtestsrv = r.string(c.challtestsrv, join(path, 'challtestsrv'), /^https?:\/\//, 'must be a URL');
  if (c.resolvers !== undefined) out.resolvers = r.strings(c.resolvers, join(path, 'resolvers'));
  if (c.propagationTimeout !== undefined)
    out.propagationTimeoutMs = r.duration(c.propagationTimeout, join(path, 'propagationTimeout'));
  return out;
}

function certificateConfig(
  r: FieldReader,
  value: unknown,
  path: string,
  issuers: readonly IssuerConfig[],
): CertificateConfig {
  const c = r.object(value, path, ['id', 'names', 'issuer', 'keyType', 'purpose', 'targets']);
  const p = (key: string) => join(path, key);
  const names = r.strings(c.names, p('names'));
  if (names.length === 0) r.fail(p('names'), 'must list at least one name');
  names.forEach((name, i) => {
    try {
      parseNames([name]);
    } catch {
      r.fail(p(`names[${i}]`), 'is not a DNS name, wildcard or IP address');
    }
  });
  // Ids go into file paths (`{id}` of a files issuer, targets) and variable names: plain ones only.
  const id =
    c.id === undefined
      ? names[0]!.toLowerCase().replace(/^\*\./, 'wildcard.')
      : r.string(c.id, p('id'), CERT_ID, CERT_ID_BOUND);
  const listed = c.issuer === undefined ? [issuers[0]!.id] : r.strings(c.issuer, p('issuer'));
  listed.forEach((ref, i) => {
    if (!issuers.some((issuer) => issuer.id === ref))
      r.fail(
        Array.isArray(c.issuer) ? p(`issuer[${i}]`) : p('issuer'),
        `names no issuer of issuers (known: ${issuers.map((x) => x.id).join(', ')})`,
      );
  });
  const purpose =
    c.purpose === undefined ? 'server' : r.oneOf(c.purpose, p('purpose'), ['server', 'client'] as const);
  const targets = (c.targets === undefined ? [] : r.array(c.targets, p('targets'))).map((t, i) =>
    targetSpec(r, t, p(`targets[${i}]`), dirname(r.file)),
  );
  return {
    id,
    names,
    issuers: listed,
    purpose,
    targets,
    ...(c.keyType !== undefined && { keyType: r.oneOf(c.keyType, p('keyType'), KEY_TYPES) }),
  };
}
