/**
 * What a store holds about certificates, read the way an operator needs it: every pointer
 * (`current.json`) below `certificates/`, whatever the directory layout (`certificates/<issuer>/
 * @<id>/current.json` today, the first-name directories of earlier versions), each described by
 * the facts the pointer itself records, and the chain it points at. Read only; nothing here is
 * trusted or served, so a damaged entry is reported (STORE_CORRUPT), never fatal.
 */
import { parseCertificates } from '../crypto/inspect.js';
import { DEFAULT_RENEWAL_POLICY } from '../manager/policy.js';
import { layout } from '../store/layout.js';
import type { Store } from '../store/store.js';

export interface StoredCertificate {
  id: string;
  names: string[];
  /** The issuer's id as the pointer records it, else its directory name. */
  issuer: string;
  purpose: string | null;
  keyType: string | null;
  serial: string | null;
  fingerprint256: string | null;
  notBefore: Date | null;
  notAfter: Date | null;
  storedAt: Date | null;
  previousSerial: string | null;
  revoked: string[];
  /** The pointer's key in the store. */
  key: string;
  /** `id`: the current layout; `legacy`: an earlier version's first-name directory. */
  layout: 'id' | 'legacy';
  /** What is wrong with the stored entry, when something is. */
  problem: { code: string; message: string } | null;
}

const POINTER = 'current.json';
const CONCURRENCY = 16;

const date = (value: unknown): Date | null => {
  if (typeof value !== 'string') return null;
  const parsed = new Date(value);
  return Number.isFinite(parsed.getTime()) ? parsed : null;
};
const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

function describePointer(key: string, raw: Uint8Array | null): StoredCertificate {
  const parts = layout.parseCertificate(key);
  const segments = key.split('/');
  const dirName = segments[segments.length - 2] ?? key;
  const base: StoredCertificate = {
    id: parts?.id ?? dirName.replace(/^@/, ''),
    names: [],
    issuer: parts?.issuer ?? segments[1] ?? '',
    purpose: null,
    keyType: null,
    serial: null,
    fingerprint256: null,
    notBefore: null,
    notAfter: null,
    storedAt: null,
    previousSerial: null,
    revoked: [],
    key,
    layout: parts?.legacyName !== undefined ? 'legacy' : 'id',
    problem: null,
  };
  if (raw === null)
    return { ...base, problem: { code: 'STORE_CORRUPT', message: 'pointer vanished while listing' } };
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(Buffer.from(raw).toString('utf8'));
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new Error('not an object');
  } catch {
    return { ...base, problem: { code: 'STORE_CORRUPT', message: 'pointer is not valid JSON' } };
  }
  const previous = meta.previous as Record<string, unknown> | null | undefined;
  const found: StoredCertificate = {
    ...base,
    id: text(meta.id) ?? base.id,
    names: Array.isArray(meta.names) ? meta.names.filter((n): n is string => typeof n === 'string') : [],
    issuer: text(meta.issuer) ?? base.issuer,
    purpose: text(meta.purpose),
    keyType: text(meta.keyType),
    serial: text(meta.serial),
    fingerprint256: text(meta.fingerprint256),
    notBefore: date(meta.notBefore),
    notAfter: date(meta.notAfter),
    storedAt: date(meta.storedAt),
    previousSerial: text(previous?.serial),
    revoked: Array.isArray(meta.revoked)
      ? meta.revoked.filter((r): r is string => typeof r === 'string')
      : [],
  };
  if (!found.serial || !/^[0-9a-f]{1,64}$/.test(found.serial) || !found.notAfter || !found.notBefore)
    return {
      ...found,
      problem: { code: 'STORE_CORRUPT', message: 'pointer lacks a serial or validity dates' },
    };
  return found;
}

/** Runs `fn` over `items`, at most CONCURRENCY at a time, keeping their order. */
async function mapBounded<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  return out;
}

/**
 * Every certificate pointer in the store, sorted by id. A certificate found in both layouts is
 * listed once, from its current layout (the older directory is what a manager moves on first use).
 */
export async function readCertificates(store: Store): Promise<StoredCertificate[]> {
  const keys = (await store.list('certificates')).filter((k) => k.endsWith(`/${POINTER}`)).sort();
  const found = await mapBounded(keys, async (key) => describePointer(key, await store.get(key)));
  const current = new Set(found.filter((c) => c.layout === 'id').map((c) => `${c.issuer}\0${c.id}`));
  return found
    .filter((c) => c.layout === 'id' || !current.has(`${c.issuer}\0${c.id}`))
    .sort((a, b) => a.id.localeCompare(b.id) || a.issuer.localeCompare(b.issuer));
}

/**
 * When the manager plans to renew, as far as the store tells: the default policy's fraction of
 * the lifetime (2/3; jitter may bring it up to 5% of the lifetime earlier, an issuer's renewal
 * window or a configured policy elsewhere). Null without validity dates.
 */
export function plannedRenewal(c: Pick<StoredCertificate, 'notBefore' | 'notAfter'>): Date | null {
  if (!c.notBefore || !c.notAfter) return null;
  const fraction =
    typeof DEFAULT_RENEWAL_POLICY.renewAt === 'number' ? DEFAULT_RENEWAL_POLICY.renewAt : 2 / 3;
  const start = c.notBefore.getTime();
  return new Date(start + (c.notAfter.getTime() - start) * fraction);
}

export type CertificateState = 'valid' | 'expired' | 'not-yet-valid' | 'damaged';

export function stateOf(c: StoredCertificate, now: number): CertificateState {
  if (c.problem || !c.notAfter || !c.notBefore) return 'damaged';
  if (c.notAfter.getTime() <= now) return 'expired';
  if (c.notBefore.getTime() > now) return 'not-yet-valid';
  return 'valid';
}

/** The chain a pointer points at (PEM), checked against the pointer's serial. */
export async function readChain(
  store: Store,
  c: StoredCertificate,
): Promise<{ pem: string } | { problem: { code: string; message: string } }> {
  if (!c.serial) return { problem: { code: 'STORE_CORRUPT', message: 'the pointer names no serial' } };
  const dir = c.key.slice(0, -POINTER.length - 1);
  const raw = await store.get(`${dir}/${c.serial}/cert.pem`);
  if (!raw) return { problem: { code: 'STORE_CORRUPT', message: `no chain stored for serial ${c.serial}` } };
  try {
    const chain = parseCertificates(raw);
    if (chain[0]!.info.serialNumber !== c.serial)
      return {
        problem: { code: 'STORE_CORRUPT', message: 'the stored chain is not the one its pointer names' },
      };
    return { pem: chain.map((p) => p.pem).join('') };
  } catch {
    return {
      problem: { code: 'STORE_CORRUPT', message: `the chain stored for serial ${c.serial} does not parse` },
    };
  }
}
