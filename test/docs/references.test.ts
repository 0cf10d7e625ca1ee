// Every Markdown file a comment or a document points at is in the repository, and every
// `file.md#section` anchor names a heading of that file: a reader of the code (or of the
// declarations in the package, which keep the comments) can follow each reference.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const SCANNED = ['src', 'test', 'bench', 'examples', 'scripts', 'docs', 'README.md'];
const TEXT = /\.(ts|mts|cts|js|mjs|cjs|md)$/;
// A path-like token ending in .md, with an optional #anchor; URLs are someone else's files.
const REFERENCE = /[\w./:-]*\w\.md(?:#[\w-]+)?/g;
// This file cites made-up documents on purpose, to show the check catches them.
const SELF = relative(root, fileURLToPath(import.meta.url));

function files(path: string): string[] {
  const full = join(root, path);
  if (!existsSync(full)) return [];
  if (!statSync(full).isDirectory()) return TEXT.test(path) ? [path] : [];
  return readdirSync(full).flatMap((entry) => files(join(path, entry)));
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\s-]/g, '')
    .replace(/\s/g, '-');
}

function anchors(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1] ?? '')));
}

/** The references in `text` (written in file `from`) that a reader of the repository cannot follow. */
function brokenReferences(from: string, text: string, exists: (path: string) => string | null): string[] {
  const broken: string[] = [];
  for (const [token] of text.matchAll(REFERENCE)) {
    if (token.includes('://')) continue;
    const [file = '', anchor] = token.replace(/^[.:]+(?=[\w])/, '').split('#');
    const candidates = [join(dirname(from), file), file];
    const target = candidates.map((c) => exists(c)).find((content) => content !== null);
    if (target === undefined) broken.push(`${from}: ${token} is not a file of the repository`);
    else if (anchor !== undefined && !anchors(target).has(anchor)) {
      broken.push(`${from}: ${token} names no heading of ${file}`);
    }
  }
  return broken;
}

const inRepository = (path: string): string | null => {
  const full = join(root, path);
  if (relative(root, full).startsWith('..') || !existsSync(full) || statSync(full).isDirectory()) return null;
  return readFileSync(full, 'utf8');
};

describe('references to documents', () => {
  it('every .md file cited in src, test, bench, examples, scripts and docs exists, with its section', () => {
    const broken = SCANNED.flatMap(files)
      .filter((path) => path !== SELF)
      .flatMap((path) => brokenReferences(path, readFileSync(join(root, path), 'utf8'), inRepository));
    expect(broken).toEqual([]);
  });

  it('the check catches a reference outside the repository and a section that does not exist', () => {
    const outside = ['platform', 'facts'].join('-');
    const text = `see ${outside}.md §1, docs/platform.md#node-tls, docs/platform.md#no-such-part, bench/README.md`;
    expect(brokenReferences('src/x.ts', text, inRepository)).toEqual([
      `src/x.ts: ${outside}.md is not a file of the repository`,
      'src/x.ts: docs/platform.md#no-such-part names no heading of docs/platform.md',
    ]);
  });

  it('docs/platform.md has the four sections comments point at', () => {
    const sections = anchors(readFileSync(join(root, 'docs/platform.md'), 'utf8'));
    for (const name of ['node-tls', 'acme', 'step-ca', 'grpc']) expect(sections.has(name), name).toBe(true);
  });
});
