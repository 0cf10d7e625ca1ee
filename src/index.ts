// Public API of certkeeper. Every exported name is listed here explicitly.
export { CertkeeperError, type ErrorCode, isCertkeeperError } from './errors.js';
export { assertStoreKey, certificateName, issuerKey, layout } from './store/layout.js';
export type { LockLease, LockOptions, Store, StoreStat } from './store/store.js';
export { DEFAULT_LOCK_TTL_MS } from './store/store.js';
