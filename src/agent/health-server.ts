/**
 * The agent's optional HTTP port: `/healthz` and `/readyz` (src/ops/health-handler.ts) for
 * orchestrators and Docker's HEALTHCHECK, and the status page below `/status/`. It shows
 * certificate ids and error messages: bind it where only operators and the orchestrator reach it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHealthHandler } from '../ops/health-handler.js';
import type { ObservedManager } from '../ops/observer.js';
import { createStatusPage } from '../ops/status-page.js';

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

export async function startHealthServer(
  fleet: ObservedManager,
  port: number,
  host: string,
): Promise<HealthServer> {
  const health = createHealthHandler(fleet);
  const page = createStatusPage(fleet, { title: 'certkeeper agent' });
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/status') {
      res.writeHead(301, { Location: '/status/' }).end();
      return;
    }
    if (url.startsWith('/status/')) {
      req.url = url.slice('/status'.length);
      page(req, res);
      return;
    }
    health(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      page.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
