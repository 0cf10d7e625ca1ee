import { describe, expect, it } from 'vitest';
import {
  assertStoreKey,
  certificateIdOf,
  certificateName,
  certificateSegment,
  issuerKey,
  joinKey,
  keyHasPrefix,
  layout,
  MAX_KEY_LENGTH,
  MAX_SEGMENT_LENGTH,
  segment,
} from '../../src/store/layout.js';

const invalid = expect.objectContaining({ code: 'INVALID_STORE_KEY' });

describe('segment', () => {
  it('accepts ordinary names unchanged', () => {
    for (const name of [
      'a',
      'a.example',
      '_wildcard_.a.example',
      'cert.pem',
      '..hidden',
      'x'.repeat(MAX_SEGMENT_LENGTH),
    ]) {
      expect(segment(name)).toBe(name);
    }
  });

  it.each([
    ['empty', ''],
    ['dot', '.'],
    ['dot-dot', '..'],
    ['slash', 'a/b'],
    ['backslash', 'a\\b'],
    ['NUL', 'a\0b'],
    ['newline', 'a\nb'],
    ['carriage return', 'a\rb'],
    ['escape', '\u001b[31m'],
    ['DEL', 'a\u007f'],
    ['over-long', 'x'.repeat(MAX_SEGMENT_LENGTH + 1)],
  ])('refuses %s', (_, value) => {
    expect(() => segment(value)).toThrow(invalid);
  });

  it('shows a hostile value JSON-escaped and truncated, so it cannot forge a log line', () => {
    try {
      segment(`evil\n[INFO] forged ${'y'.repeat(100)}`);
      expect.unreachable();
    } catch (err) {
      const message = (err as Error).message;
      expect(message).not.toContain('\n');
      expect(message).toContain('\\n[INFO] forged');
      expect(message).toContain('…');
    }
  });
});

describe('assertStoreKey', () => {
  it('accepts relative multi-segment keys', () => {
    expect(assertStoreKey('certificates/internal/a.example/cert.pem')).toBe(
      'certificates/internal/a.example/cert.pem',
    );
    expect(assertStoreKey('', { allowEmpty: true })).toBe('');
  });

  it.each([
    ['traversal', '../x'],
    ['traversal in the middle', 'a/../../x'],
    ['current-directory segment', 'a/./b'],
    ['absolute', '/etc/passwd'],
    ['drive letter', 'C:/x'],
    ['empty segment', 'a//b'],
    ['trailing slash', 'a/'],
    ['empty', ''],
    ['NUL', 'a/b\0.pem'],
    ['control character', 'a/\tb'],
    ['backslash traversal', '..\\..\\x'],
    ['over-long', 'a/'.repeat(MAX_KEY_LENGTH / 2).concat('a')],
  ])('refuses %s', (_, key) => {
    expect(() => assertStoreKey(key)).toThrow(invalid);
  });

  it('refuses non-strings', () => {
    expect(() => assertStoreKey(42 as never)).toThrow(invalid);
    expect(() => assertStoreKey(undefined as never)).toThrow(invalid);
  });
});

describe('joinKey and keyHasPrefix', () => {
  it('joins validated segments and refuses a segment with a separator', () => {
    expect(joinKey('a', 'b', 'c')).toBe('a/b/c');
    expect(() => joinKey('a', '../b')).toThrow(invalid);
    expect(() => joinKey('a', 'b/c')).toThrow(invalid);
  });

  it('matches segment-wise', () => {
    expect(keyHasPrefix('certs/a/x', 'certs/a')).toBe(true);
    expect(keyHasPrefix('certs/a', 'certs/a')).toBe(true);
    expect(keyHasPrefix('certs/ab/x', 'certs/a')).toBe(false);
    expect(keyHasPrefix('anything', '')).toBe(true);
  });
});

describe('certificate directories (issue 12 item 12: store keys alias)', () => {
  // Pairs that shared one directory (and so one pointer and one lock) when certificates were
  // stored under their first name.
  it.each([
    ['*.example.com', '_wildcard_.example.com'],
    ['::1', '__1'],
    ['2001:db8::1', '2001_db8__1'],
    ['Web', 'web'],
    ['a.example', 'a.example.'],
    ['a%2a', 'a*'],
    ['@web', 'web'],
  ])('%j and %j map to different directories, locks and keys', (a, b) => {
    expect(layout.certificate('internal', a).dir).not.toBe(layout.certificate('internal', b).dir);
    expect(layout.issueLock(a)).not.toBe(layout.issueLock(b));
    // Case-insensitive file systems: the two must differ by more than case.
    expect(layout.certificate('internal', a).dir.toLowerCase()).not.toBe(
      layout.certificate('internal', b).dir.toLowerCase(),
    );
  });

  const ids = [
    'web',
    'localhost',
    '*.example.com',
    '_wildcard_.example.com',
    '::1',
    '__1',
    'Web',
    'a.example.',
    '.hidden',
    '..',
    '.',
    'a/b',
    'a\\b',
    'CON',
    'café',
    '証明書',
    '🙂',
    'x'.repeat(200),
    '%41',
    '@',
  ];

  it('encodes every id reversibly, in lower-case file-name characters only', () => {
    const seen = new Set<string>();
    for (const id of ids) {
      let encoded: string;
      try {
        encoded = certificateSegment(id);
      } catch (error) {
        // Only what cannot be mapped is refused: here, an id too long once encoded.
        expect(error).toMatchObject({ code: 'INVALID_STORE_KEY' });
        expect(id.length).toBe(200);
        continue;
      }
      expect(encoded).toMatch(/^@[a-z0-9.%-]+$/);
      expect(encoded.endsWith('.')).toBe(false);
      expect(certificateIdOf(encoded)).toBe(id);
      expect(seen.has(encoded.toLowerCase())).toBe(false);
      seen.add(encoded.toLowerCase());
    }
  });

  it('reads back only the spelling it writes', () => {
    expect(certificateIdOf('@web')).toBe('web');
    for (const other of ['web', '@%77eb', '@%4', '@%ZZ', '@', '@A', '@%ff', '_wildcard_.a.example'])
      expect(certificateIdOf(other)).toBeNull();
  });

  it.each([
    ['a lone surrogate', 'a\uD800b'],
    ['an empty id', ''],
    ['an id too long once encoded', 'É'.repeat(100)],
  ])('refuses %s instead of mapping it onto another id', (_, id) => {
    expect(() => certificateSegment(id)).toThrow(invalid);
    expect(() => layout.certificate('internal', id)).toThrow(invalid);
  });

  it('parses the keys it builds, and the first-name keys of earlier versions', () => {
    const key = layout.certificate('https://ca.example/dir', '*.A.example').current;
    expect(key).toBe('certificates/ca.example-dir/@%2a.%41.example/current.json');
    expect(layout.parseCertificate(key)).toEqual({
      issuer: 'ca.example-dir',
      id: '*.A.example',
      rest: 'current.json',
    });
    const legacy = layout.legacyCertificate('internal', '*.A.example');
    expect(legacy.dir).toBe('certificates/internal/_wildcard_.a.example');
    expect(layout.parseCertificate(legacy.generation('0a').key)).toEqual({
      issuer: 'internal',
      legacyName: '_wildcard_.a.example',
      rest: '0a/key.pem',
    });
    expect(layout.parseCertificate('certificates/internal/@%ZZ/current.json')).toBeNull();
    const keys = layout.certificate('internal', 'web');
    expect(keys.serialOf(keys.generation('0A').key)).toBe('0a');
    for (const other of [
      keys.current,
      `${keys.dir}/0a`,
      `${keys.dir}/xyz/key.pem`,
      'certificates/internal/@webx/0a/key.pem',
    ])
      expect(keys.serialOf(other), other).toBeNull();
    expect(layout.parseCertificate('ca/internal/root.pem')).toBeNull();
  });
});

describe('certificateName (the first-name directories of earlier versions)', () => {
  it.each([
    ['A.Example.COM', 'a.example.com'],
    ['a.example.', 'a.example'],
    ['*.Example.com', '_wildcard_.example.com'],
    ['192.0.2.1', '192.0.2.1'],
    ['2001:DB8::1', '2001_db8__1'],
    ['::1', '__1'],
  ])('%s → %s', (input, expected) => {
    expect(certificateName(input)).toBe(expected);
  });

  it.each([['a/b'], ['..'], ['.'], [''], ['a\0b'], ['a\\b'], ['x'.repeat(300)]])('refuses %j', (input) => {
    expect(() => certificateName(input)).toThrow(invalid);
  });
});

describe('issuerKey', () => {
  it.each([
    ['https://acme-v02.api.letsencrypt.org/directory', 'acme-v02.api.letsencrypt.org-directory'],
    [
      'https://acme-staging-v02.api.letsencrypt.org/directory',
      'acme-staging-v02.api.letsencrypt.org-directory',
    ],
    ['https://localhost:14000/dir', 'localhost_14000-dir'],
    ['https://[::1]:14000/dir', '___1__14000-dir'],
    ['https://ca.example/', 'ca.example'],
    ['https://user:secret@ca.example/acme', 'ca.example-acme'],
    ['internal', 'internal'],
    ['Internal CA', 'internal_ca'],
    ['a/b', 'a_b'],
    ['../x', '.._x'],
  ])('%s → %s', (input, expected) => {
    expect(issuerKey(input)).toBe(expected);
  });

  it('keeps staging and production of one CA apart', () => {
    expect(issuerKey('https://acme-staging-v02.api.letsencrypt.org/directory')).not.toBe(
      issuerKey('https://acme-v02.api.letsencrypt.org/directory'),
    );
  });

  it('never lets URL credentials into the key', () => {
    expect(issuerKey('https://user:secret@ca.example/acme')).not.toContain('secret');
  });

  it.each([['..'], ['.'], [''], ['   ']])('refuses %j', (input) => {
    expect(() => issuerKey(input)).toThrow(invalid);
  });
});

describe('layout', () => {
  it('builds certificate, account, challenge, CA and lock keys under fixed roots', () => {
    expect(layout.certificate('https://ca.example/dir', 'web').dir).toBe('certificates/ca.example-dir/@web');
    expect(layout.certificatesOf('internal')).toBe('certificates/internal');
    expect(layout.account('internal', 'ops')).toEqual({
      dir: 'accounts/internal/ops',
      record: 'accounts/internal/ops/account.json',
      key: 'accounts/internal/ops/key.pem',
    });
    expect(layout.challenge('http-01', 'tok-123_x')).toBe('challenges/http-01/tok-123_x');
    expect(layout.ca('root', 'cert.pem')).toBe('ca/root/cert.pem');
    expect(layout.lock('issue')).toBe('locks/issue');
  });

  it.each([
    ['challenge token with traversal', () => layout.challenge('http-01', '../../etc/passwd')],
    ['challenge token with a slash', () => layout.challenge('http-01', 'a/b')],
    ['account with traversal', () => layout.account('internal', '..')],
    ['CA file with a slash', () => layout.ca('root', 'x/y')],
    ['legacy certificate name with a slash', () => layout.legacyCertificate('internal', 'a/b')],
    ['legacy certificate name with NUL', () => layout.legacyCertificate('internal', 'a\0.example')],
    ['lock name with traversal', () => layout.lock('..')],
  ])('refuses a %s', (_, build) => {
    expect(build).toThrow(invalid);
  });

  it('marks private keys as sensitive', () => {
    expect(layout.isSensitive('accounts/internal/ops/key.pem')).toBe(true);
    expect(layout.isSensitive('x/server.key')).toBe(true);
    expect(layout.isSensitive('accounts/internal/ops/account.json')).toBe(false);
  });
});

describe('layout parses every key it builds', () => {
  it('certificate pointers, under an id or an earlier first name', () => {
    const pointer = layout.certificate('internal', 'Web API').current;
    expect(layout.isPointer(pointer)).toBe(true);
    expect(layout.parseCertificate(pointer)).toEqual({
      issuer: 'internal',
      id: 'Web API',
      rest: 'current.json',
    });
    expect(layout.isPointer(layout.legacyCertificate('internal', 'web.test').current)).toBe(true);
    expect(layout.isPointer(layout.certificate('internal', 'web').generation('0a').cert)).toBe(false);
    expect(layout.isPointer('certificates/internal/current.json')).toBe(false);
    expect(layout.certificates()).toBe('certificates');
  });

  it('replica heartbeats', () => {
    const key = layout.member('host-12.a_b');
    expect(key).toBe('cluster/members/host-12.a_b');
    expect(layout.parseMember(key)).toBe('host-12.a_b');
    expect(keyHasPrefix(key, layout.members())).toBe(true);
    expect(layout.parseMember('cluster/members/a/b')).toBeNull();
    expect(layout.parseMember('cluster/other/a')).toBeNull();
    expect(() => layout.member('../x')).toThrow(invalid);
  });

  it('TLS-ALPN-01 challenge records and their acknowledgements', () => {
    const record = layout.alpnRecord('a.test');
    expect(record).toBe('challenges/tls-alpn-01/a.test.key');
    expect(layout.parseAlpnRecord(record)).toBe('a.test');
    expect(keyHasPrefix(record, layout.alpnRecords())).toBe(true);
    expect(layout.parseAlpnRecord('challenges/tls-alpn-01/a.test')).toBeNull();
    expect(layout.parseAlpnRecord('challenges/tls-alpn-01/.key')).toBeNull();
    expect(layout.parseAlpnRecord('challenges/tls-alpn-01-acks/a.test/r1')).toBeNull();
    const ack = layout.alpnAck('a.test', 'r1');
    expect(ack).toBe('challenges/tls-alpn-01-acks/a.test/r1');
    expect(layout.parseAlpnAck(ack)).toEqual({ servername: 'a.test', replica: 'r1' });
    expect(keyHasPrefix(ack, layout.alpnAcks('a.test'))).toBe(true);
    expect(layout.parseAlpnAck(layout.alpnAcks('a.test'))).toBeNull();
    expect(() => layout.alpnAck('a/b', 'r1')).toThrow(invalid);
  });
});
