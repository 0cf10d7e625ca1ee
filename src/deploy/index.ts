/** Deploy targets for services that are not Node: the public names of src/deploy. */

export { type FileTargetOptions, fileTarget } from './file-target.js';
export type { FileKind, FileSetPaths, FileSetSpec } from './files/layout.js';
export type { ReloadAction, ReloadContext } from './reload/action.js';
export { type CommandOptions, commandReload } from './reload/command.js';
export { type HttpOptions, httpReload } from './reload/http.js';
export { type HaproxyOptions, haproxyRuntimeApi } from './reload/recipes/haproxy.js';
export { type MariadbOptions, mariadbReload } from './reload/recipes/mariadb.js';
export { type RedisOptions, redisReload } from './reload/recipes/redis.js';
export {
  mosquittoReload,
  natsReload,
  type PidOptions,
  type PostgresOptions,
  postgresReload,
} from './reload/recipes/signals.js';
export type { StreamEndpoint } from './reload/recipes/stream.js';
export {
  type ApacheOptions,
  apacheReload,
  type NginxOptions,
  nginxReload,
} from './reload/recipes/web-servers.js';
export { type SignalOptions, signalReload } from './reload/signal.js';
export type { DeployableGeneration, DeployTarget, LiveCheck } from './target.js';
export type { LiveEndpoint } from './verify/live-check.js';
export type { Protocol } from './verify/preambles.js';
