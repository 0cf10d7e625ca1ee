// The nginx and Apache recipes test the configuration before signalling: `nginx -s reload` and
// `apache2 -k graceful` exit 0 even when the master then refuses what it reads, so without the
// test step a broken configuration would look like a successful reload.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fileTarget } from '../../../src/deploy/file-target.js';
import { testCa } from '../../support/peers/generations.js';
import { removeTempDirs, stopAllPeers, tempDir } from '../../support/peers/process.js';
import { apache, nginx } from '../../support/peers/web.js';

const ca = testCa('web-servers');
afterEach(stopAllPeers);
afterAll(removeTempDirs);

for (const definition of [nginx, apache]) {
  describe.skipIf(!definition.available())(`${definition.name} recipe`, () => {
    it('a configuration the server would refuse is DEPLOY_FAILED, and the server keeps serving', async () => {
      const dir = join(tempDir(`${definition.name}-conf`), 'set');
      const first = await ca.issue();
      await fileTarget({ ids: ['svc'], dir }).apply('svc', first, AbortSignal.timeout(60_000));
      const service = await definition.start(dir);
      const verify = [{ host: '127.0.0.1', port: service.port, servername: 'localhost' }];
      const target = fileTarget({ ids: ['svc'], dir, reload: service.reload, verify });
      appendFileSync(service.config!, '\nthis is not a directive;\n');
      const error = await target.apply('svc', await ca.issue(), AbortSignal.timeout(60_000)).catch((e) => e);
      expect(error).toMatchObject({ code: 'DEPLOY_FAILED' });
      expect(error.details.output).toMatch(/this|Invalid command|unknown directive/i);
      const check = await target.verify('svc', first, AbortSignal.timeout(60_000));
      expect(check?.fingerprint256).toBe(first.info.fingerprint256);
    });
  });
}
