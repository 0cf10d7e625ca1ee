// docs/errors.md against src/errors.ts: one entry per code in ERROR_CODES and none besides, each
// with its meaning and what to do, and the retryable default it states is what isRetryable says.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AlpnChallengeRegistry } from '../src/challenges/tls-alpn-01/registry.js';
import { TlsAlpn01Solver, tlsAlpnSupported } from '../src/challenges/tls-alpn-01/solver.js';
import { CertkeeperError, ERROR_CODES, type ErrorCode, isRetryable } from '../src/errors.js';
import { conflictError } from '../src/manager/claims.js';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

/** Each `### \`CODE\`` heading with the text up to the next heading. */
function entries(markdown: string): Map<string, string> {
  const found = new Map<string, string>();
  const parts = markdown.split(/^### /m).slice(1);
  for (const part of parts) {
    const heading = /^`([A-Z0-9_]+)`\s*$/m.exec(part.split('\n')[0]!);
    if (!heading) throw new Error(`a heading that is not a code: ### ${part.split('\n')[0]}`);
    if (found.has(heading[1]!)) throw new Error(`${heading[1]} is listed twice`);
    found.set(heading[1]!, part.split(/^## /m)[0]!);
  }
  return found;
}

const listed = entries(doc);

describe('docs/errors.md', () => {
  it('lists every code of ERROR_CODES, and only those', () => {
    expect([...listed.keys()].sort()).toEqual([...ERROR_CODES].sort());
  });

  it('lists them in the order of ERROR_CODES (grouped the same way)', () => {
    expect([...listed.keys()]).toEqual([...ERROR_CODES]);
  });

  it.each([...ERROR_CODES])('%s: says what it means and what to do', (code) => {
    const text = listed.get(code) ?? '';
    expect(text).toMatch(/\*\*Means:\*\* \S/);
    expect(text).toMatch(/\*\*What to do:\*\* \S/);
  });

  it.each([...ERROR_CODES])('%s: states the retryable default isRetryable applies', (code) => {
    const text = listed.get(code) ?? '';
    const stated = /^- Retryable: (yes|no|depends)\b/m.exec(text)?.[1];
    expect(stated, `${code} has no "Retryable:" line`).toBeDefined();
    const byDefault = isRetryable(new CertkeeperError(code as ErrorCode, 'x'));
    if (stated === 'depends') {
      // Decided per error: the entry must name the detail that decides it.
      expect(text).toContain('details.retryable');
    } else if (stated === 'no' && byDefault) {
      // Retryable by code, but every error of it is raised with the override: say so.
      expect(text).toContain('`details.retryable: false`');
    } else {
      expect(stated).toBe(byDefault ? 'yes' : 'no');
    }
  });

  it('the codes said to carry details.retryable: false do, where they are raised', () => {
    const overridden = [...listed]
      .filter(
        ([code, text]) =>
          /^- Retryable: no\b/m.test(text) && isRetryable(new CertkeeperError(code as ErrorCode, 'x')),
      )
      .map(([code]) => code)
      .sort();
    expect(overridden).toEqual(['CERTIFICATE_CONFLICT', 'CHALLENGE_UNAVAILABLE']);
    const conflict = conflictError(
      { id: 'api', names: ['api.test'], primary: 'api.test', keyType: 'ec-p256', purpose: 'server' } as never,
      { id: 'api', names: ['other.test'], keyType: 'ec-p256', purpose: 'server', storedAt: 'then' } as never,
    );
    const unavailable = new TlsAlpn01Solver().unavailable({ type: 'dns', value: 'api.test' }, false, {
      tlsAlpn: { registry: new AlpnChallengeRegistry() },
    } as never);
    expect(conflict.code).toBe('CERTIFICATE_CONFLICT');
    expect(isRetryable(conflict)).toBe(false);
    if (tlsAlpnSupported()) {
      expect(unavailable?.code).toBe('CHALLENGE_UNAVAILABLE');
      expect(isRetryable(unavailable)).toBe(false);
    }
  });
});
