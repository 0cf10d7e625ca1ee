// Helpers for token-enrollment tests: minting against a fake CA, requests and contexts for
// calling the issuer directly, and a recorder that captures every surface a token could leak
// through (events, logger fields, status, errors).
import { inspect } from 'node:util';
import { type Clock, systemClock } from '../../../src/clock.js';
import { createCsr } from '../../../src/crypto/csr.js';
import { parseCertificates } from '../../../src/crypto/inspect.js';
import { type KeyType, PrivateKey } from '../../../src/crypto/keys.js';
import { parseNames } from '../../../src/crypto/names.js';
import type { CertificateRequest, IssuerContext } from '../../../src/issuers/issuer.js';
import { type MintTokenOptions, mintToken } from '../../../src/issuers/step-ca/mint.js';
import type { Logger } from '../../../src/logger.js';
import type { ManagerEvents } from '../../../src/manager/events.js';
import type { CertificateManager } from '../../../src/manager/manager.js';
import { MemoryStore } from '../../../src/store/memory-store.js';
import type { Store } from '../../../src/store/store.js';
import type { FakeStepCa } from './ca.js';

/** Mints a token from the CA's provisioner (the private JWK; the encrypted key has its own tests). */
export function mint(
  ca: FakeStepCa,
  options: Partial<MintTokenOptions> & { subject: string },
): Promise<string> {
  return mintToken({
    caUrl: ca.url,
    rootFingerprint: ca.rootFingerprint,
    provisioner: ca.provisioner.name,
    key: ca.provisioner.privateJwk,
    ...options,
  });
}

/** A certificate request as the manager builds it: a fresh key and a CSR for the names. */
export async function makeRequest(
  names: string[],
  keyType: KeyType = 'ec-p256',
  id = names[0]!,
): Promise<CertificateRequest> {
  const key = await PrivateKey.generate(keyType);
  const normalised = parseNames(names).map((n) => n.value);
  return {
    id,
    names: normalised,
    purpose: 'server',
    keyType,
    key,
    csr: await createCsr({ key, names: normalised }),
  };
}

/** The request of a renewal: the current certificate and its key. */
export async function renewalOf(
  chainPem: string,
  key: PrivateKey,
  names: string[],
): Promise<CertificateRequest & { current: NonNullable<CertificateRequest['current']> }> {
  const request = await makeRequest(names);
  const info = parseCertificates(chainPem)[0]!.info;
  return { ...request, current: { chainPem, key, info } };
}

export interface Recorder {
  logger: Logger;
  lines: string[];
  /** Everything captured, as one searchable text. */
  text(): string;
  capture(value: unknown): void;
}

export function recorder(): Recorder {
  const lines: string[] = [];
  const add = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    lines.push(`${level} ${message} ${inspect(fields ?? {}, { depth: 6 })} ${JSON.stringify(fields ?? {})}`);
  return {
    logger: { debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error') },
    lines,
    text: () => lines.join('\n'),
    capture(value) {
      lines.push(inspect(value, { depth: 8 }));
      try {
        lines.push(JSON.stringify(value));
      } catch {
        // circular: inspect has it
      }
      if (value instanceof Error) lines.push(String(value.stack), String(value.message));
    },
  };
}

/** Records every manager event into the recorder. */
export function recordEvents(manager: CertificateManager, into: Recorder): void {
  const names: (keyof ManagerEvents)[] = [
    'loaded',
    'storedInvalid',
    'obtaining',
    'obtained',
    'renewed',
    'adopted',
    'renewalFailed',
    'expiring',
    'swapped',
    'rolledBack',
    'liveVerifyFailed',
    'revoked',
  ];
  for (const name of names) manager.on(name, (payload: unknown) => into.capture({ event: name, payload }));
}

export function context(
  store: Store = new MemoryStore(),
  options: { clock?: Clock; logger?: Logger; signal?: AbortSignal } = {},
): IssuerContext {
  return {
    store,
    clock: options.clock ?? systemClock,
    logger: options.logger ?? recorder().logger,
    signal: options.signal ?? new AbortController().signal,
  };
}

/** A clock `offsetMs` away from the real one (a host with a skewed clock). */
export function skewedClock(offsetMs: number): Clock {
  return { ...systemClock, now: () => Date.now() + offsetMs };
}
