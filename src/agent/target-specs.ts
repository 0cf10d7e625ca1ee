/**
 * A certificate's `targets:` entries: checked when the file is loaded (paths named like every
 * other setting), then turned into file-and-reload targets (`fileTarget` of src/deploy) with
 * their reload actions. Each entry is the target's options as data; a reload action is a
 * mapping of one recipe name to that recipe's options:
 *
 *   targets:
 *     - dir: /etc/nginx/certs/web
 *       files: { fullchain: fullchain.pem, privkey: privkey.pem }
 *       reload: [{ nginx: { config: /etc/nginx/nginx.conf } }]
 *       verify: [{ host: 127.0.0.1, port: 443, servername: web.example }]
 */
import { isAbsolute, resolve } from 'node:path';
import type { DeployTarget } from '../deploy/target.js';
import { isCertkeeperError, optionError } from '../errors.js';
import { type FieldReader, join, type Plain } from './config-read.js';

/** Reload recipe names in the file, and the factory each stands for. */
export const RELOAD_KINDS = {
  nginx: 'nginxReload',
  apache: 'apacheReload',
  haproxy: 'haproxyRuntimeApi',
  redis: 'redisReload',
  postgres: 'postgresReload',
  mariadb: 'mariadbReload',
  nats: 'natsReload',
  mosquitto: 'mosquittoReload',
  command: 'commandReload',
  signal: 'signalReload',
  http: 'httpReload',
} as const;
export type ReloadKind = keyof typeof RELOAD_KINDS;

export interface TargetSpec {
  name?: string;
  /** Absolute (relative paths are resolved from the configuration file's directory). */
  dir: string;
  files?: Plain;
  mode?: Plain;
  owner?: Plain;
  keep?: number;
  reload: { kind: ReloadKind; options: Plain }[];
  verify: Plain[];
}

/** The deploy factories a build provides (src/deploy's public names). */
export interface TargetFactories {
  fileTarget(options: Record<string, unknown>): DeployTarget;
  [recipe: string]: (options: Record<string, unknown>) => unknown;
}

const KNOWN = ['name', 'dir', 'files', 'mode', 'owner', 'keep', 'reload', 'verify'];
const mapping = (r: FieldReader, value: unknown, path: string): Plain => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) r.fail(path, 'must be a mapping');
  return value as Plain;
};

export function targetSpec(r: FieldReader, value: unknown, path: string, baseDir: string): TargetSpec {
  const t = r.object(value, path, KNOWN);
  const dir = r.string(t.dir, join(path, 'dir'));
  const reload = (t.reload === undefined ? [] : r.array(t.reload, join(path, 'reload'))).map((entry, i) => {
    const at = join(join(path, 'reload'), i);
    const m = mapping(r, entry, at);
    const keys = Object.keys(m);
    if (keys.length !== 1 || !(keys[0]! in RELOAD_KINDS))
      r.fail(at, `must be one recipe with its options (${Object.keys(RELOAD_KINDS).join(', ')})`);
    const kind = keys[0] as ReloadKind;
    return { kind, options: m[kind] === null ? {} : mapping(r, m[kind], join(at, kind)) };
  });
  const verify = (t.verify === undefined ? [] : r.array(t.verify, join(path, 'verify'))).map((v, i) =>
    mapping(r, v, join(join(path, 'verify'), i)),
  );
  return {
    dir: isAbsolute(dir) ? dir : resolve(baseDir, dir),
    reload,
    verify,
    ...(t.name !== undefined && { name: r.string(t.name, join(path, 'name')) }),
    ...(t.files !== undefined && { files: mapping(r, t.files, join(path, 'files')) }),
    ...(t.mode !== undefined && { mode: mapping(r, t.mode, join(path, 'mode')) }),
    ...(t.owner !== undefined && { owner: mapping(r, t.owner, join(path, 'owner')) }),
    ...(t.keep !== undefined && { keep: r.integer(t.keep, join(path, 'keep'), 1, 100) }),
  };
}

/** Runs a factory, reporting an option it refuses at `path` of the configuration file. */
function at<T>(path: string, file: string, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (isCertkeeperError(error, 'INVALID_OPTION'))
      throw optionError(path, `is refused: ${error.message}`, file, { file });
    throw error;
  }
}

/** The deploy target of one entry for certificate `id`, built with `factories`. */
export function buildTarget(
  id: string,
  spec: TargetSpec,
  factories: TargetFactories,
  path: string,
  file: string,
): DeployTarget {
  const reload = spec.reload.map(({ kind, options }, i) =>
    at(`${path}.reload[${i}].${kind}`, file, () => factories[RELOAD_KINDS[kind]]!(options)),
  );
  return at(path, file, () =>
    factories.fileTarget({
      ids: [id],
      dir: spec.dir,
      reload,
      verify: spec.verify,
      ...(spec.name && { name: spec.name }),
      ...(spec.files && { files: spec.files }),
      ...(spec.mode && { mode: spec.mode }),
      ...(spec.owner && { owner: spec.owner }),
      ...(spec.keep && { keep: spec.keep }),
    }),
  );
}
