/**
 * An agent opened for one operation (`certkeeper renew`, `certkeeper revoke`): the same
 * configuration, store and issuers as the daemon, started without holding the process, stopped
 * when the operation is done. What it obtains is stored under the certificate's store lock, so
 * a running agent (or a replica) sharing the store adopts it.
 */
import type { Logger } from '../logger.js';
import { Agent } from './agent.js';
import { loadAgentConfig } from './config-file.js';
import { openAgentStore } from './store.js';

export async function withAgent<T>(
  path: string,
  o: { env: Readonly<Record<string, string | undefined>>; cwd: string; logger: Logger },
  fn: (agent: Agent) => Promise<T>,
): Promise<T> {
  const config = loadAgentConfig(path, o);
  const store = openAgentStore(config.store, o.cwd, o.logger);
  let agent: Agent;
  try {
    agent = new Agent(config, { store, logger: o.logger, keepAlive: false });
  } catch (error) {
    await store.store.close().catch(() => {});
    throw error;
  }
  try {
    await agent.start();
    return await fn(agent);
  } finally {
    await agent.stop();
  }
}
