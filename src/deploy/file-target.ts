/**
 * A deploy target for services that read their certificate from files: nginx, Apache, HAProxy,
 * Redis, PostgreSQL, MariaDB, NATS, Mosquitto. It composes the
 * three parts in src/deploy:
 *
 *   files/   the set of files for one certificate, replaced atomically (versions + `..data` flip)
 *   reload/  what makes the service take them (signal, command, HTTP request, recipes per service)
 *   verify/  a live handshake (with the service's own STARTTLS-style preamble) that proves it did
 *
 * `apply` writes and flips the set, then runs the reload actions in order; a failing action
 * flips the set back, reloads again with the old files and throws `DEPLOY_FAILED`. `verify`
 * probes every endpoint until it serves the new fingerprint (`LIVE_VERIFY_FAILED` when the bound
 * runs out). `rollback` flips back to the kept previous version (rewriting it from the
 * generation given when it was pruned), reloads, and verifies the old certificate live again.
 *
 * @example
 *   fileTarget({
 *     ids: ['web'],
 *     dir: '/etc/nginx/certs/web',
 *     files: { combined: true },
 *     reload: [nginxReload({ config: '/etc/nginx/nginx.conf' })],
 *     verify: [{ host: '127.0.0.1', port: 443 }],
 *   });
 */
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { publicKeyMatches } from '../crypto/keys.js';
import { CertkeeperError, optionError } from '../errors.js';
import { AtomicFileSet, type SetModes, type SetOwner } from './files/atomic-set.js';
import {
  type FileKind,
  type FileSetPaths,
  type FileSetSpec,
  fileNames,
  renderFileSet,
} from './files/layout.js';
import { type ReloadAction, serviceNotRunning } from './reload/action.js';
import type { DeployableGeneration, DeployTarget, LiveCheck } from './target.js';
import { checkLive, type LiveEndpoint, validateEndpoint } from './verify/live-check.js';

export interface FileTargetOptions {
  /** In events, logs and errors. Default `files:<dir>`. */
  name?: string;
  /** The certificate ids this target receives. */
  ids: readonly string[];
  /**
   * The set's directory (absolute). With several ids it must contain `{id}`, replaced by each
   * id (`/etc/ssl/certkeeper/{id}`); with one id it may be a plain directory.
   */
  dir: string;
  /** Which files, under which names. Default: fullchain.pem, privkey.pem, chain.pem, cert.pem. */
  files?: FileSetSpec;
  /** File modes. Default key files 0600, certificates 0644, directories 0755. */
  mode?: Partial<SetModes>;
  /** Owner of the files and links (certkeeper must be allowed to chown: root, or the same user). */
  owner?: SetOwner;
  /** Versions kept besides the current one, for rollback. Default 1 (the previous one). */
  keep?: number;
  /** Run in order after each flip; the first failure stops and undoes the deploy. */
  reload?: readonly ReloadAction[];
  /** Endpoints that must serve the new certificate after the reload. None: `verify` resolves null. */
  verify?: readonly LiveEndpoint[];
}

const OWNER = 'fileTarget';
const DEFAULT_MODES: SetModes = { key: 0o600, cert: 0o644, dir: 0o755 };

function validate(options: FileTargetOptions): void {
  if (typeof options !== 'object' || options === null)
    throw optionError('options', 'must be an object', OWNER);
  const { ids, dir } = options;
  if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => typeof id !== 'string' || id === '')) {
    throw optionError('ids', 'must be a non-empty array of certificate ids', OWNER);
  }
  if (typeof dir !== 'string' || !dir.startsWith('/'))
    throw optionError('dir', 'must be an absolute path', OWNER);
  if (ids.length > 1 && !dir.includes('{id}')) {
    throw optionError('dir', 'must contain {id} when the target serves several ids', OWNER);
  }
  if (dir.includes('{id}') && ids.some((id) => !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id))) {
    throw optionError('ids', 'must be plain names (letters, digits, . _ -) to be used in dir', OWNER);
  }
  for (const [kind, mode] of Object.entries(options.mode ?? {})) {
    if (!Number.isInteger(mode) || (mode as number) < 0 || (mode as number) > 0o777) {
      throw optionError(`mode.${kind}`, 'must be a file mode (0 to 0o777)', OWNER);
    }
  }
  for (const key of ['uid', 'gid'] as const) {
    const value = options.owner?.[key];
    if (value !== undefined && !(Number.isInteger(value) && value >= 0)) {
      throw optionError(`owner.${key}`, 'must be a non-negative integer', OWNER);
    }
  }
  if (options.keep !== undefined && !(Number.isInteger(options.keep) && options.keep >= 1)) {
    throw optionError('keep', 'must be an integer >= 1 (the previous version is needed for rollback)', OWNER);
  }
  for (const [i, action] of (options.reload ?? []).entries()) {
    if (typeof action?.run !== 'function')
      throw optionError(`reload[${i}]`, 'must be a reload action', OWNER);
  }
  for (const [i, endpoint] of (options.verify ?? []).entries())
    validateEndpoint(endpoint, `verify[${i}]`, OWNER);
}

/**
 * Refuses a key that is not the leaf's before any file is touched. Services differ in what they
 * do with such a pair at reload: nginx's and Apache's config tests, HAProxy's runtime API and
 * Redis refuse it, but a graceful Apache restart that meets it makes the parent exit (no server
 * left), and signal-reloaded services keep their old context and say so only in their logs.
 */
function assertPair(target: string, generation: DeployableGeneration): void {
  const leaf = new X509Certificate(generation.chainPem);
  if (publicKeyMatches(generation.key, leaf.publicKey)) return;
  throw new CertkeeperError(
    'DEPLOY_FAILED',
    `${target}: the key is not the certificate's (nothing was written)`,
    {
      details: { target, serial: generation.info.serialNumber },
    },
  );
}

class FileTarget implements DeployTarget {
  readonly name: string;
  readonly #ids: ReadonlySet<string>;
  readonly #options: FileTargetOptions;
  readonly #names: Partial<Record<FileKind, string>>;
  readonly #sets = new Map<string, AtomicFileSet>();
  /** The last operation on each id: applies and rollbacks of one set never interleave. */
  readonly #queues = new Map<string, Promise<unknown>>();
  /** Ids whose first deploy found the service not running: nothing to verify until the next one. */
  readonly #notRunning = new Set<string>();

  constructor(options: FileTargetOptions) {
    validate(options);
    this.#options = options;
    this.#names = fileNames(options.files, OWNER);
    this.#ids = new Set(options.ids);
    this.name = options.name ?? `files:${options.dir}`;
    const modes = { ...DEFAULT_MODES, ...options.mode };
    for (const id of options.ids) {
      const dir = options.dir.replaceAll('{id}', id);
      this.#sets.set(id, new AtomicFileSet(dir, modes, options.owner, options.keep ?? 1));
    }
  }

  serves(id: string): boolean {
    return this.#ids.has(id);
  }

  /** The stable paths of `id`'s files (what services are configured with). */
  paths(id: string): FileSetPaths {
    return this.#paths(this.#set(id).dir);
  }

  apply(id: string, generation: DeployableGeneration, signal: AbortSignal): Promise<void> {
    return this.#serialized(id, () => this.#apply(id, generation, signal));
  }

  rollback(id: string, previous: DeployableGeneration | null, signal: AbortSignal): Promise<void> {
    return this.#serialized(id, () => this.#rollback(id, previous, signal));
  }

  async #serialized<T>(id: string, operation: () => Promise<T>): Promise<T> {
    this.#set(id);
    const before = this.#queues.get(id) ?? Promise.resolve();
    const mine = before.catch(() => {}).then(operation);
    this.#queues.set(id, mine);
    try {
      return await mine;
    } finally {
      if (this.#queues.get(id) === mine) this.#queues.delete(id);
    }
  }

  async #apply(id: string, generation: DeployableGeneration, signal: AbortSignal): Promise<void> {
    const set = this.#set(id);
    const before = await set.current();
    if (before?.fingerprint256 === generation.info.fingerprint256) {
      // Already in the files (a restart, a repeated deploy): the service may still need the reload.
      await this.#reload(id, before.fingerprint256, before.version, signal);
      return;
    }
    assertPair(this.name, generation);
    const files = await renderFileSet(this.#names, this.#options.files ?? {}, generation);
    const written = await set.write(files, generation.info.fingerprint256);
    try {
      await this.#reload(id, written.fingerprint256, written.version, signal);
    } catch (error) {
      // A first deploy to a service that does not run yet: it reads these files when it starts
      // (a sidecar writes them before nginx can start), so they stay, and there is nothing live
      // to verify. With files there before, a service that is gone is a failure like any other.
      if (!before && serviceNotRunning(error)) {
        this.#notRunning.add(id);
        return;
      }
      // The service refused the new files: give it back the old ones, and tell it so.
      if (before && (await set.restore(before.fingerprint256, this.#fileNameList()))) {
        const restored = await set.current();
        if (restored)
          await this.#reload(id, restored.fingerprint256, restored.version, signal).catch(() => {});
      }
      throw error;
    }
  }

  async verify(id: string, generation: DeployableGeneration, signal: AbortSignal): Promise<LiveCheck | null> {
    this.#set(id); // an id this target does not serve is an error, not a pass
    if (this.#notRunning.delete(id)) return null;
    const endpoints = this.#options.verify ?? [];
    if (endpoints.length === 0) return null;
    let first: LiveCheck | null = null;
    for (const endpoint of endpoints) {
      const check = await checkLive(
        this.name,
        endpoint,
        generation.info.fingerprint256,
        generation.info.dnsNames,
        signal,
      );
      first ??= check;
    }
    return first;
  }

  async #rollback(id: string, previous: DeployableGeneration | null, signal: AbortSignal): Promise<void> {
    const set = this.#set(id);
    if (previous === null) {
      // Nothing to go back to: the set goes, and the service is not reloaded onto missing files.
      await set.clear(this.#fileNameList());
      return;
    }
    const restored = await set.restore(previous.info.fingerprint256, this.#fileNameList());
    if (!restored) {
      const files = await renderFileSet(this.#names, this.#options.files ?? {}, previous);
      await set.write(files, previous.info.fingerprint256);
    }
    const current = await set.current();
    await this.#reload(id, previous.info.fingerprint256, current!.version, signal);
    await this.verify(id, previous, signal);
  }

  async close(): Promise<void> {}

  #set(id: string): AtomicFileSet {
    const set = this.#sets.get(id);
    if (!set)
      throw new CertkeeperError('UNKNOWN_CERTIFICATE', `${this.name} does not serve ${id}`, {
        details: { id },
      });
    return set;
  }

  #fileNameList(): string[] {
    return Object.values(this.#names);
  }

  #paths(base: string): FileSetPaths {
    const paths: Partial<Record<FileKind, string>> = {};
    for (const [kind, name] of Object.entries(this.#names)) paths[kind as FileKind] = join(base, name);
    return paths;
  }

  async #reload(id: string, fingerprint256: string, version: string, signal: AbortSignal): Promise<void> {
    const dir = this.#set(id).dir;
    const context = {
      id,
      fingerprint256,
      paths: this.#paths(dir),
      versionPaths: this.#paths(join(dir, version)),
      signal,
    };
    for (const action of this.#options.reload ?? []) await action.run(context);
  }
}

/** A file-and-reload deploy target (see the module comment). Options are validated here, once. */
export function fileTarget(options: FileTargetOptions): DeployTarget & { paths(id: string): FileSetPaths } {
  return new FileTarget(options);
}
