// What the test and its replica processes (replica.ts) say to each other over IPC.

export type ReplicaStoreConfig =
  | { kind: 'redis'; url: string; prefix: string; timeoutMs?: number }
  | { kind: 'postgres'; url: string; table: string; applicationName: string; timeoutMs?: number }
  /** A CachedStore: RedisStore as the primary, a FileStore in `cacheDir` as the local copy. */
  | { kind: 'cached-redis'; url: string; prefix: string; cacheDir: string; timeoutMs?: number };

export interface ReplicaConfig {
  replicaId: string;
  store: ReplicaStoreConfig;
  /** base64 of 32 bytes, the same on every replica (they read each other's keys). */
  encryptionKey: string;
  directoryUrl: string;
  /** Trust for the ACME server's HTTPS endpoint. */
  caPem: string;
  /** The root issued chains must end at. */
  rootPem: string;
  challenge: 'http-01' | 'tls-alpn-01';
  certificates: { id: string; names: string[] }[];
  lockTtlMs: number;
  reconcileIntervalMs: number;
}

export type ReplicaMessage =
  | { type: 'up'; replicaId: string; httpsPort: number; httpPort: number }
  | { type: 'event'; name: string; payload: unknown; at: number }
  | { type: 'locked'; name: string; token: number; at: number }
  | { type: 'unlocked'; name: string; token: number; at: number }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; fields: unknown }
  | { type: 'warning'; name: string; message: string }
  | { type: 'reply'; id: string; ok: true; value: unknown }
  | { type: 'reply'; id: string; ok: false; error: string };
