// `certkeeper/stores`: the stores shared by replicas (Redis and PostgreSQL, whose drivers are
// optional peers loaded on first use), the wrappers for encryption at rest and caching, and the
// Store contract for those who implement their own. Memory and file stores are in `certkeeper`.
// Every exported name is listed.

export { CachedStore, type CachedStoreOptions } from '../store/cached-store.js';
export { EncryptedStore, type EncryptedStoreOptions } from '../store/encrypted-store.js';
export {
  ENCRYPTION_KEY_ENV,
  type EncryptionKey,
  type EncryptionKeyInput,
  type EncryptionOptions,
} from '../store/envelope.js';
export { assertStoreKey } from '../store/layout.js';
export { type PgPoolLike, PostgresStore, type PostgresStoreOptions } from '../store/postgres-store.js';
export { type RedisClientLike, RedisStore, type RedisStoreOptions } from '../store/redis-store.js';
export type { EncryptionChoice, ReencryptResult } from '../store/sealer.js';
export type { SharedStoreOptions } from '../store/shared-store.js';
export {
  DEFAULT_LOCK_TTL_MS,
  type LockLease,
  type LockOptions,
  type RecordSealing,
  type SealedRecord,
  type Store,
  type StoreChange,
  type StoreChangeListener,
  type StoreStat,
} from '../store/store.js';
export { type WithLockOptions, withLock } from '../store/with-lock.js';
