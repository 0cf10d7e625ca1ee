/**
 * Reload by HTTP request: services and sidecars with an admin endpoint (Envoy's, Traefik's,
 * an application's own `/reload`). Any status outside 2xx, a network error or the time limit is
 * `DEPLOY_FAILED`; the body is kept (scrubbed, shortened) for the error.
 */
import { CertkeeperError, describeCause, optionError, scrubSecrets } from '../../errors.js';
import type { ReloadAction } from './action.js';

export interface HttpOptions {
  url: string;
  /** Default POST. */
  method?: string;
  headers?: Readonly<Record<string, string>>;
  body?: string;
  /** Default 10 000 ms. */
  timeoutMs?: number;
}

const KEEP_BODY = 1024;

/** A reload action that sends one HTTP request. */
export function httpReload(options: HttpOptions): ReloadAction {
  const owner = 'httpReload';
  let url: URL;
  try {
    url = new URL(options?.url);
  } catch {
    throw optionError('url', 'must be an absolute http(s) URL', owner);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw optionError('url', 'must be http or https', owner);
  if (options.timeoutMs !== undefined && !(Number.isInteger(options.timeoutMs) && options.timeoutMs > 0)) {
    throw optionError('timeoutMs', 'must be a positive integer (ms)', owner);
  }
  const method = options.method ?? 'POST';
  // The URL may carry credentials in its query; the description keeps the origin and path only.
  const description = `${method} ${url.origin}${url.pathname}`;
  return {
    description,
    async run(context) {
      const signal = AbortSignal.any([context.signal, AbortSignal.timeout(options.timeoutMs ?? 10_000)]);
      let response: Response;
      let body: string;
      try {
        response = await fetch(url, { method, headers: options.headers, body: options.body, signal });
        body = await response.text();
      } catch (error) {
        throw new CertkeeperError('DEPLOY_FAILED', `reload ${description} failed: ${describeCause(error)}`, {
          details: { reload: description },
        });
      }
      if (response.status >= 200 && response.status < 300) return;
      const shown = scrubSecrets(body.trim()).slice(0, KEEP_BODY);
      throw new CertkeeperError(
        'DEPLOY_FAILED',
        `reload ${description} answered ${response.status}: ${shown}`,
        {
          details: { reload: description, status: response.status, output: shown },
        },
      );
    },
  };
}
