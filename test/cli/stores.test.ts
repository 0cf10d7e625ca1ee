// certkeeper status, inspect and export-root against every kind of store a deployment uses: a
// FileStore (plain, and encrypted at rest with the key in the environment), Redis and PostgreSQL
// (keys in a file), each filled by a real manager with the embedded CA.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertificateStatus } from '../../src/manager/manager.js';
import { cli, type Fixture, fill, type Kind, storeOf } from './support.js';

const kinds: Kind[] = ['file', 'file-encrypted', 'redis', 'postgres'];

for (const kind of kinds) {
  describe(`the CLI on a ${kind} store`, () => {
    let f: Fixture | null;
    let status: CertificateStatus[];
    let roots: string[];
    beforeAll(async () => {
      f = await storeOf(kind);
      if (f) ({ status, roots } = await fill(f.store));
    }, 60_000);
    afterAll(() => f?.cleanup());

    const byId = (id: string) => status.find((s) => s.id === id)!;

    it('status --json: every certificate with its issuer, serial, dates and planned renewal', async (t) => {
      if (!f) return t.skip();
      const run = await cli(['status', '--json', ...f.args], f.env);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const listed = JSON.parse(run.stdout) as Record<string, unknown>[];
      expect(listed.map((c) => c.id)).toEqual(['api', 'web']);
      for (const c of listed) {
        const s = byId(c.id as string);
        expect(c).toMatchObject({
          names: s.names,
          issuer: s.issuer,
          purpose: s.purpose,
          serial: s.serial,
          fingerprint256: s.fingerprint256,
          notBefore: s.notBefore!.toISOString(),
          notAfter: s.notAfter!.toISOString(),
          state: 'valid',
          lastError: null,
        });
        const planned = Date.parse(c.plannedRenewal as string);
        const lifetime = s.notAfter!.getTime() - s.notBefore!.getTime();
        expect(planned).toBe(s.notBefore!.getTime() + Math.round((lifetime * 2) / 3));
      }
    });

    it('status: a table with names, issuer, serial, not-after, next renewal, last error', async (t) => {
      if (!f) return t.skip();
      const run = await cli(['list', ...f.args], f.env);
      expect(run.code).toBe(0);
      const [header, ...rows] = run.stdout.trimEnd().split('\n');
      expect(header).toMatch(
        /^ID\s+NAMES\s+ISSUER\s+SERIAL\s+NOT AFTER\s+NEXT RENEWAL\s+STATE\s+LAST ERROR$/,
      );
      expect(rows).toHaveLength(2);
      const web = rows.find((r) => r.startsWith('web '))!;
      expect(web).toContain('web.test, www.web.test');
      expect(web).toContain(byId('web').serial!);
      expect(web).toContain('internal-certkeeper-internal');
      expect(web).toContain(
        `${byId('web').notAfter!.toISOString().slice(0, 16).replace('T', ' ')} UTC (in 23h)`,
      );
      expect(web).toMatch(/~\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+valid\s+-$/);
    });

    it('inspect <id>: the stored facts and the chain', async (t) => {
      if (!f) return t.skip();
      const run = await cli(['inspect', 'web', ...f.args], f.env);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('Certificate id web in ');
      expect(run.stdout).toContain(`Serial:         ${byId('web').serial}`);
      expect(run.stdout).toContain('Names:          web.test, www.web.test');
      expect(run.stdout).toContain('Certificate 2 of 2 (CA)');
      const json = JSON.parse((await cli(['inspect', 'api', '--json', ...f.args], f.env)).stdout);
      expect(json.stored).toMatchObject({ id: 'api', serial: byId('api').serial, purpose: 'client' });
      expect(json.certificates[0]).toMatchObject({
        serial: byId('api').serial,
        fingerprint256: byId('api').fingerprint256,
        extKeyUsage: ['clientAuth'],
        isCA: false,
      });
    });

    it("export-root: the embedded CA's root, as the manager trusts it", async (t) => {
      if (!f) return t.skip();
      const run = await cli(['export-root', ...f.args], f.env);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.stdout).toBe(roots.join(''));
      expect(run.stdout).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
    });

    if (kind === 'redis' || kind === 'postgres') {
      it('reads pointers without a key, but needs the key for the sealed CA state', async (t) => {
        if (!f) return t.skip();
        const keyless = f.args.slice(0, f.args.indexOf('--encryption-key-file'));
        const listed = await cli(['status', '--json', ...keyless]);
        expect(listed.code).toBe(0);
        expect(JSON.parse(listed.stdout)).toHaveLength(2);
        const root = await cli(['export-root', ...keyless]);
        expect(root.code).toBe(1);
        expect(root.stdout).toBe('');
        expect(root.stderr).toMatch(/sealed: give its encryption key.*\(STORE_CORRUPT\)/);
      });
    }
  });
}
