// NameIndex: the SNI name → certificate id map (exact, then the wildcard one label up).
// Names are registered the way the manager normalises them (lowercase, no trailing dot,
// canonical IPs); lookups take whatever a client sends in SNI.
import { describe, expect, it } from 'vitest';
import { parseNames } from '../../src/crypto/names.js';
import { NameIndex } from '../../src/server/name-index.js';

function index(entries: Record<string, string[]>): NameIndex {
  const names = new NameIndex();
  for (const [id, list] of Object.entries(entries))
    names.add(
      id,
      parseNames(list).map((n) => n.value),
    );
  return names;
}

describe('NameIndex', () => {
  it('finds exact names', () => {
    const names = index({ web: ['www.example.test', 'example.test'], api: ['api.test'] });
    expect(names.lookup('www.example.test')).toBe('web');
    expect(names.lookup('example.test')).toBe('web');
    expect(names.lookup('api.test')).toBe('api');
    expect(names.lookup('other.test')).toBeUndefined();
    expect(names.size).toBe(3);
  });

  it('returns undefined without a name (no SNI)', () => {
    const names = index({ web: ['a.test'] });
    expect(names.lookup(undefined)).toBeUndefined();
    expect(names.lookup(null)).toBeUndefined();
    expect(names.lookup('')).toBeUndefined();
  });

  it('is case-insensitive', () => {
    const names = index({ web: ['Mixed.Example.TEST'], wild: ['*.Api.Test'] });
    expect(names.lookup('mixed.example.test')).toBe('web');
    expect(names.lookup('MIXED.EXAMPLE.TEST')).toBe('web');
    expect(names.lookup('X.API.TEST')).toBe('wild');
  });

  it('ignores one trailing dot (a fully qualified name)', () => {
    const names = index({ web: ['a.test'], wild: ['*.api.test'] });
    expect(names.lookup('a.test.')).toBe('web');
    expect(names.lookup('x.api.test.')).toBe('wild');
    expect(names.lookup('a.test..')).toBeUndefined();
  });

  it('matches a wildcard for exactly one left-most label', () => {
    const names = index({ wild: ['*.api.test'] });
    expect(names.lookup('x.api.test')).toBe('wild');
    expect(names.lookup('api.test')).toBeUndefined();
    expect(names.lookup('a.b.api.test')).toBeUndefined();
    expect(names.lookup('xapi.test')).toBeUndefined();
    expect(names.lookup('.api.test')).toBeUndefined();
  });

  it('prefers an exact name over a wildcard, whichever was registered first', () => {
    const names = index({ wild: ['*.api.test'], exact: ['special.api.test'] });
    expect(names.lookup('special.api.test')).toBe('exact');
    expect(names.lookup('other.api.test')).toBe('wild');
  });

  it('finds IP literals sent in SNI, in any textual form', () => {
    const names = index({ v4: ['10.0.0.7'], v6: ['::1', '2001:db8::5'] });
    expect(names.lookup('10.0.0.7')).toBe('v4');
    expect(names.lookup('10.0.0.7.')).toBe('v4');
    expect(names.lookup('::1')).toBe('v6');
    expect(names.lookup('0:0:0:0:0:0:0:1')).toBe('v6');
    expect(names.lookup('[::1]')).toBe('v6');
    expect(names.lookup('2001:DB8:0:0:0:0:0:5')).toBe('v6');
    expect(names.lookup('10.0.0.8')).toBeUndefined();
    expect(names.lookup('10.0.7')).toBeUndefined();
  });

  it('an IPv6 zone id or a non-string is an unknown name, never a throw (it runs in the SNI callback)', () => {
    const names = index({ v6: ['fe80::1', '::1'], web: ['a.test'] });
    for (const hostile of [
      'fe80::1%eth0',
      '::1%1',
      '[fe80::1%25eth0]',
      'FE80::1%lo',
      '1.2.3.4%0',
      '%',
      'a.test%x',
    ]) {
      expect(names.lookup(hostile)).toBeUndefined();
    }
    for (const wrong of [42, {}, [], true, Symbol('x')]) {
      expect(names.lookup(wrong as unknown as string)).toBeUndefined();
    }
    expect(names.lookup('x'.repeat(100_000))).toBeUndefined();
    expect(names.lookup('fe80::1')).toBe('v6');
  });

  it('gives a name claimed twice to the first claimer', () => {
    const names = index({ first: ['shared.test', 'one.test'], second: ['shared.test', 'two.test'] });
    expect(names.lookup('shared.test')).toBe('first');
    expect(names.lookup('two.test')).toBe('second');
    expect(names.size).toBe(3);
  });

  it('remove() forgets an id; a shared name passes to the next claimer', () => {
    const names = index({
      first: ['shared.test', 'one.test'],
      second: ['shared.test', 'two.test'],
      third: ['shared.test'],
    });
    names.remove('first');
    expect(names.lookup('one.test')).toBeUndefined();
    expect(names.lookup('shared.test')).toBe('second');
    names.remove('second');
    expect(names.lookup('shared.test')).toBe('third');
    expect(names.lookup('two.test')).toBeUndefined();
    names.remove('third');
    expect(names.lookup('shared.test')).toBeUndefined();
    expect(names.size).toBe(0);
    names.remove('never-added');
    expect(names.size).toBe(0);
  });

  it('remove() of a later claimer leaves the first claimer in place', () => {
    const names = index({ first: ['shared.test'], second: ['shared.test'] });
    names.remove('second');
    expect(names.lookup('shared.test')).toBe('first');
    // And the name no longer passes to the removed id.
    names.remove('first');
    expect(names.lookup('shared.test')).toBeUndefined();
  });

  it('add() again replaces the names of an id and keeps its claim on the ones it keeps', () => {
    const names = index({ first: ['shared.test', 'old.test'], second: ['shared.test'] });
    names.add('first', ['shared.test', 'new.test']);
    expect(names.lookup('shared.test')).toBe('first');
    expect(names.lookup('new.test')).toBe('first');
    expect(names.lookup('old.test')).toBeUndefined();
    names.add('first', ['new.test']);
    expect(names.lookup('shared.test')).toBe('second');
  });
});
