/**
 * ACME accounts: created on first use, kept in the store (key at `accounts/<directory>/<id>/key.pem`,
 * URL in `account.json`) per directory and contact, so restarts and every replica sharing the
 * store use one account. Creation runs under a store lock and re-checks after acquiring, so
 * replicas starting together register once. An account the CA no longer knows is forgotten and
 * registered again.
 */
import { createHash } from 'node:crypto';
import acme from 'acme-client';
import { type KeyType, PrivateKey } from '../../crypto/keys.js';
import { CertkeeperError } from '../../errors.js';
import { layout } from '../../store/layout.js';
import type { Store } from '../../store/store.js';
import { withLock } from '../../store/with-lock.js';
import type { IssuerContext } from '../issuer.js';
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
    return layout.account(this.#options.directoryUrl, this.accountId);
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

  /** Drops the stored account (the CA no longer knows it); the next `client()` registers anew. */
  async forget(context: IssuerContext): Promise<void> {
    this.#clients.delete(context.store);
    const keys = this.#keys();
    await context.store.delete(keys.record);
    await context.store.delete(keys.key);
    context.logger.warn('ACME account unknown to the CA; registering a new one', {
      directory: this.#options.directoryUrl,
    });
  }

  /** The stored account URL, if any. */
  async accountUrl(store: Store): Promise<string | null> {
    const raw = await store.get(this.#keys().record);
    return raw ? (JSON.parse(Buffer.from(raw).toString('utf8')) as AccountRecord).url : null;
  }

  /**
   * Account key rollover (RFC 8555 §7.3.5). The new key is stored before the CA is told, under
   * the account lock; if the process dies in between, the old key stays on record and the CA
   * still accepts it until the key change reaches it.
   */
  async rollover(context: IssuerContext): Promise<void> {
    const keys = this.#keys();
    await withLock(context.store, `acme-account/${this.accountId}`, async () => {
      const client = await this.client(context);
      const accountUrl = client.getAccountUrl();
      const next = await PrivateKey.generate(this.#options.keyType);
      const fresh = makeClient(this.#transport, {
        directoryUrl: this.#options.directoryUrl,
        key: next,
        accountUrl,
      });
      const url = await client.http.getResourceUrl('keyChange');
      // The inner JWS is signed by the new key and carries the old key (RFC 8555 §7.3.5).
      const inner = fresh.http.createSignedBody(url, { account: accountUrl, oldKey: client.http.getJwk() });
      await client.api.updateAccountKey(inner);
      await context.store.put(keys.key, next.toPem());
      this.#clients.set(context.store, Promise.resolve(fresh));
    });
  }

  async #load(context: IssuerContext): Promise<AcmeClient> {
    const existing = await this.#read(context.store);
    if (existing) return existing;
    return withLock(context.store, `acme-account/${this.accountId}`, async () => {
      // Another replica may have registered while we waited for the lock.
      const again = await this.#read(context.store);
      if (again) return again;
      return this.#register(context);
    });
  }

  async #read(store: Store): Promise<AcmeClient | null> {
    const keys = this.#keys();
    const [recordRaw, keyRaw] = await Promise.all([store.get(keys.record), store.get(keys.key)]);
    if (!recordRaw || !keyRaw) return null;
    let record: AccountRecord;
    let key: PrivateKey;
    try {
      record = JSON.parse(Buffer.from(recordRaw).toString('utf8')) as AccountRecord;
      key = PrivateKey.fromPem(keyRaw);
      if (typeof record.url !== 'string') throw new Error('no url');
    } catch {
      // A damaged account entry costs one registration, never an outage.
      return null;
    }
    return makeClient(this.#transport, {
      directoryUrl: this.#options.directoryUrl,
      key,
      accountUrl: record.url,
      eab: this.#options.externalAccountBinding,
    });
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
      throw new CertkeeperError(
        'INVALID_OPTION',
        `AcmeIssuer option agreeToTerms must be true: ${o.directoryUrl} requires agreeing to ${String(terms)}`,
        { details: { option: 'agreeToTerms' } },
      );
    }
    if (directory.meta?.externalAccountRequired && !o.externalAccountBinding) {
      throw new CertkeeperError(
        'INVALID_OPTION',
        `AcmeIssuer option externalAccountBinding is required by ${o.directoryUrl}`,
      );
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
    };
    await context.store.put(keys.record, JSON.stringify(record, null, 2));
    context.logger.info('ACME account registered', { directory: o.directoryUrl, account: record.url });
    return client;
  }
}
