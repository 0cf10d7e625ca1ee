/**
 * ACME accounts: created on first use, kept in the store (key at `accounts/<directory>/<id>/key.pem`,
 * URL in `account.json`) per directory and contact, so restarts and every replica sharing the
 * store use one account. Every change (registration, re-registration, key rollover) runs under
 * one store lock per account and re-reads the store after acquiring it, so a fleet registers
 * once, and re-registers once when the CA forgets the account (a CA restarted, an account
 * deactivated), not once per replica.
 *
 * Key rollover stores the new key (`next-key.pem`, beside the old one) before the CA is told,
 * and makes it the key only once the CA confirmed: a lost answer or a failed store write leaves
 * both keys stored, and the next load asks the CA which one it holds.
 */
import { createHash } from 'node:crypto';
import acme from 'acme-client';
import { type KeyType, PrivateKey } from '../../crypto/keys.js';
import { CertkeeperError, isCertkeeperError, optionError } from '../../errors.js';
import { layout } from '../../store/layout.js';
import type { Store } from '../../store/store.js';
import { withLock } from '../../store/with-lock.js';
import type { IssuerContext } from '../issuer.js';
import { isProblem } from './problems.js';
import type { AcmeTransport } from './transport.js';

export type AccountKeyType = Extract<KeyType, 'ec-p256' | 'ec-p384' | 'rsa-2048'>;

export interface AccountOptions {
  directoryUrl: string;
  contact: string[];
  agreeToTerms: boolean;
  externalAccountBinding?: { kid: string; hmacKey: string };
  keyType: AccountKeyType;
}

interface AccountRecord {
  url: string;
  directoryUrl: string;
  contact: string[];
  createdAt: string;
  /** The terms of service agreed to, as the directory named them then (never a built-in URL). */
  termsOfService?: string;
}

/** acme-client's internals we rely on: its HTTP client (whose `request` we replace) and raw API. */
export interface AcmeInternals {
  http: {
    request: AcmeTransport['request'];
    getDirectory(): Promise<Record<string, unknown> & { meta?: Record<string, unknown> }>;
    getResourceUrl(resource: string): Promise<string>;
    createSignedBody(
      url: string,
      payload: unknown,
      opts?: { nonce?: string | null; kid?: string | null },
    ): unknown;
    getJwk(): Record<string, string>;
    getNonce(): Promise<string>;
  };
  api: {
    apiRequest(
      url: string,
      payload: unknown,
      valid: number[],
    ): Promise<{
      status: number;
      headers: Record<string, string | undefined>;
      data: { status?: string } & Record<string, unknown>;
    }>;
    updateAccountKey(body: unknown): Promise<unknown>;
    createAccount(data: Record<string, unknown>): Promise<{ headers: Record<string, string | undefined> }>;
    getAccountUrl(): string;
  };
}

export type AcmeClient = acme.Client & AcmeInternals;

export function makeClient(
  transport: AcmeTransport,
  options: {
    directoryUrl: string;
    key: PrivateKey;
    accountUrl?: string;
    eab?: AccountOptions['externalAccountBinding'];
  },
): AcmeClient {
  const client = new acme.Client({
    directoryUrl: options.directoryUrl,
    accountKey: options.key.toPem(),
    ...(options.accountUrl ? { accountUrl: options.accountUrl } : {}),
    ...(options.eab ? { externalAccountBinding: options.eab } : {}),
  }) as AcmeClient;
  client.http.request = transport.request;
  const fetchNonce = client.http.getNonce.bind(client.http);
  client.http.getNonce = async () => transport.takeNonce() ?? fetchNonce();
  return client;
}

/** The stored account: its record and key, and the new key of a rollover not settled yet. */
interface Stored {
  record: AccountRecord;
  key: PrivateKey;
  /** Present while a rollover is unsettled; null when its stored copy does not parse. */
  next?: PrivateKey | null;
}

/** Whether two clients are the same account with the same key. */
function sameAccount(a: AcmeClient, b: AcmeClient): boolean {
  return (
    a.getAccountUrl() === b.getAccountUrl() &&
    JSON.stringify(a.http.getJwk()) === JSON.stringify(b.http.getJwk())
  );
}

/** The CA answered a problem document (4xx): it refused the request, so it changed nothing. */
function refusedByCa(error: unknown): boolean {
  if (!isCertkeeperError(error)) return false;
  const status = error.details.status;
  return (
    typeof status === 'number' && status >= 400 && status < 500 && typeof error.details.type === 'string'
  );
}

export class AcmeAccounts {
  readonly #options: AccountOptions;
  readonly #transport: AcmeTransport;
  readonly #clients = new WeakMap<Store, Promise<AcmeClient>>();

  constructor(options: AccountOptions, transport: AcmeTransport) {
    this.#options = options;
    this.#transport = transport;
  }

  /** A stable id for this account within its directory: the contact set, hashed. */
  get accountId(): string {
    const seed = JSON.stringify([
      [...this.#options.contact].sort(),
      this.#options.externalAccountBinding?.kid ?? null,
    ]);
    return `acct-${createHash('sha256').update(seed).digest('hex').slice(0, 16)}`;
  }

  #keys() {
    const keys = layout.account(this.#options.directoryUrl, this.accountId);
    // Ends in `key.pem`, so stores that seal keys seal it too.
    return { ...keys, next: `${keys.dir}/next-key.pem` };
  }

  #lock<T>(store: Store, fn: () => Promise<T>): Promise<T> {
    return withLock(store, `acme-account/${this.accountId}`, fn);
  }

  #clientOf(url: string, key: PrivateKey): AcmeClient {
    return makeClient(this.#transport, {
      directoryUrl: this.#options.directoryUrl,
      key,
      accountUrl: url,
      eab: this.#options.externalAccountBinding,
    });
  }

  /** The client for this account, loading or registering it once per store. */
  client(context: IssuerContext): Promise<AcmeClient> {
    let pending = this.#clients.get(context.store);
    if (!pending) {
      pending = this.#load(context);
      this.#clients.set(context.store, pending);
      pending.catch(() => this.#clients.delete(context.store));
    }
    return pending;
  }

  /**
   * The account to use instead of `stale`, which the CA no longer accepts. Under the account
   * lock: when the store already holds another account or key (a replica re-registered or rolled
   * the key over meanwhile), that one. When it still holds `stale`: with `register` (the CA said
   * it forgot the account) a new account, registered once for every replica sharing the store;
   * without, null (nothing better is known).
   */
  async replace(context: IssuerContext, stale: AcmeClient, register: boolean): Promise<AcmeClient | null> {
    const { store } = context;
    this.#clients.delete(store);
    const client = await this.#lock(store, async () => {
      const stored = await this.#read(store);
      const current = stored ? await this.#settled(context, stored) : null;
      if (current && !sameAccount(current, stale)) return current;
      if (!register) return current;
      context.logger.warn('ACME account unknown to the CA; registering a new one', {
        directory: this.#options.directoryUrl,
      });
      // Without a record, other replicas wait for this lock instead of using the forgotten account.
      await store.delete(this.#keys().record);
      return this.#register(context);
    });
    if (client) this.#clients.set(store, Promise.resolve(client));
    return client && !sameAccount(client, stale) ? client : null;
  }

  /** The stored account URL, if any. */
  async accountUrl(store: Store): Promise<string | null> {
    const raw = await store.get(this.#keys().record);
    return raw ? (JSON.parse(Buffer.from(raw).toString('utf8')) as AccountRecord).url : null;
  }

  /**
   * Account key rollover (RFC 8555 §7.3.5), under the account lock: the new key is stored
   * beside the old one first, then the CA is told, then the new key becomes the key. Whatever
   * fails in between, the key the CA holds is in the store.
   */
  async rollover(context: IssuerContext): Promise<void> {
    const { store } = context;
    // Loading settles an earlier unfinished rollover; it takes the lock itself, so before ours.
    await this.client(context);
    const keys = this.#keys();
    await this.#lock(store, async () => {
      const stored = await this.#read(store);
      if (!stored) throw new CertkeeperError('ISSUER_FAILED', 'no ACME account is stored to roll over');
      const client = await this.#settled(context, stored);
      const url = stored.record.url;
      const next = await PrivateKey.generate(this.#options.keyType);
      await store.put(keys.next, next.toPem());
      const fresh = this.#clientOf(url, next);
      const endpoint = await client.http.getResourceUrl('keyChange');
      // The inner JWS is signed by the new key and carries the old key (RFC 8555 §7.3.5).
      const inner = fresh.http.createSignedBody(endpoint, { account: url, oldKey: client.http.getJwk() });
      // Until the CA answers, which key it holds is unknown: the next use loads and settles.
      this.#clients.delete(store);
      try {
        await client.api.updateAccountKey(inner);
      } catch (error) {
        if (refusedByCa(error)) await store.delete(keys.next).catch(() => {});
        throw error;
      }
      this.#clients.set(store, Promise.resolve(fresh));
      await store.put(keys.key, next.toPem());
      await store.delete(keys.next);
      context.logger.info('ACME account key rolled over', { directory: this.#options.directoryUrl });
    });
  }

  async #load(context: IssuerContext): Promise<AcmeClient> {
    const existing = await this.#read(context.store);
    if (existing && existing.next === undefined) return this.#clientOf(existing.record.url, existing.key);
    return this.#lock(context.store, async () => {
      // Another replica may have registered (or settled a rollover) while we waited for the lock.
      const again = await this.#read(context.store);
      return again ? this.#settled(context, again) : this.#register(context);
    });
  }

  async #read(store: Store): Promise<Stored | null> {
    const keys = this.#keys();
    const [recordRaw, keyRaw, nextRaw] = await Promise.all([
      store.get(keys.record),
      store.get(keys.key),
      store.get(keys.next),
    ]);
    if (!recordRaw || !keyRaw) return null;
    let stored: Stored;
    try {
      const record = JSON.parse(Buffer.from(recordRaw).toString('utf8')) as AccountRecord;
      if (typeof record.url !== 'string') throw new Error('no url');
      stored = { record, key: PrivateKey.fromPem(keyRaw) };
    } catch {
      // A damaged account entry costs one registration, never an outage.
      return null;
    }
    if (nextRaw) {
      try {
        stored.next = PrivateKey.fromPem(nextRaw);
      } catch {
        stored.next = null;
      }
    }
    return stored;
  }

  /**
   * The client for a stored account, settling an unfinished rollover first (under the account
   * lock): the CA is asked which key it holds (newAccount with onlyReturnExisting, signed by
   * each), that key is kept and the other dropped. When the CA knows neither, it forgot the
   * account: the old key is kept and the first request that fails re-registers (replace).
   */
  async #settled(context: IssuerContext, stored: Stored): Promise<AcmeClient> {
    if (stored.next === undefined) return this.#clientOf(stored.record.url, stored.key);
    const { store } = context;
    const keys = this.#keys();
    const candidates = stored.next ? [stored.next, stored.key] : [stored.key];
    let kept = stored.key;
    for (const key of candidates) {
      if (await this.#holds(key, stored.record.url)) {
        kept = key;
        break;
      }
    }
    if (kept !== stored.key) await store.put(keys.key, kept.toPem());
    await store.delete(keys.next);
    context.logger.info('ACME account key rollover settled', {
      directory: this.#options.directoryUrl,
      key: kept === stored.key ? 'previous' : 'new',
    });
    return this.#clientOf(stored.record.url, kept);
  }

  /** Whether the CA has `key` as the key of the account at `url`. A CA that cannot say throws. */
  async #holds(key: PrivateKey, url: string): Promise<boolean> {
    const probe = makeClient(this.#transport, { directoryUrl: this.#options.directoryUrl, key });
    try {
      const answer = await probe.api.createAccount({ onlyReturnExisting: true });
      return answer.headers.location === url;
    } catch (error) {
      if (isProblem(error, 'accountDoesNotExist') || isProblem(error, 'unauthorized')) return false;
      throw error;
    }
  }

  async #register(context: IssuerContext): Promise<AcmeClient> {
    const o = this.#options;
    const key = await PrivateKey.generate(o.keyType);
    const client = makeClient(this.#transport, {
      directoryUrl: o.directoryUrl,
      key,
      eab: o.externalAccountBinding,
    });
    const directory = await client.http.getDirectory();
    const terms = directory.meta?.termsOfService;
    if (terms && !o.agreeToTerms) {
      throw optionError(
        'agreeToTerms',
        `must be true: ${o.directoryUrl} requires agreeing to ${String(terms)}`,
        'AcmeIssuer',
      );
    }
    if (directory.meta?.externalAccountRequired && !o.externalAccountBinding) {
      throw optionError('externalAccountBinding', `is required by ${o.directoryUrl}`, 'AcmeIssuer');
    }
    const keys = this.#keys();
    // Key first: an account URL without its key is useless, a key without a URL is re-registered.
    await context.store.put(keys.key, key.toPem());
    await client.createAccount({
      termsOfServiceAgreed: o.agreeToTerms,
      ...(o.contact.length > 0 ? { contact: o.contact } : {}),
    });
    const record: AccountRecord = {
      url: client.getAccountUrl(),
      directoryUrl: o.directoryUrl,
      contact: o.contact,
      createdAt: new Date(context.clock.now()).toISOString(),
      ...(typeof terms === 'string' && o.agreeToTerms ? { termsOfService: terms.slice(0, 500) } : {}),
    };
    await context.store.put(keys.record, JSON.stringify(record, null, 2));
    context.logger.info('ACME account registered', {
      directory: o.directoryUrl,
      account: record.url,
      ...(record.termsOfService ? { termsOfService: record.termsOfService } : {}),
    });
    return client;
  }
}
