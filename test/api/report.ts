// The API report of one package entry: every exported name with its declaration as the
// declaration emitter writes it (bodies, private members and comments dropped), followed by the
// package's own types those declarations reach without exporting them (a change to one of those
// changes the public API just as much). Read from the TypeScript sources with the compiler API,
// so no build is needed; the test compares it with the committed api/<entry>.api.md.
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import ts from 'typescript';

export interface ReportOptions {
  root: string;
  /** Entry name → source file, relative to `root` (tsup.config.ts `entries`). */
  entries: Record<string, string>;
}

function compilerOptions(root: string): ts.CompilerOptions {
  const file = join(root, 'tsconfig.json');
  const config = ts.readConfigFile(file, (path) => readFileSync(path, 'utf8'));
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, dirname(file));
  return {
    ...parsed.options,
    noEmit: false,
    declaration: true,
    emitDeclarationOnly: true,
    removeComments: true,
    stripInternal: false,
    skipLibCheck: true,
  };
}

const printer = ts.createPrinter({ removeComments: true, newLine: ts.NewLineKind.LineFeed });

/** The name a top-level statement declares, if any. */
function declaredNames(statement: ts.Statement): string[] {
  if (ts.isVariableStatement(statement)) {
    return statement.declarationList.declarations.flatMap((d) =>
      ts.isIdentifier(d.name) ? [d.name.text] : [],
    );
  }
  const named = statement as ts.Statement & { name?: ts.Node };
  return named.name && ts.isIdentifier(named.name) ? [named.name.text] : [];
}

function isPrivate(member: ts.Node): boolean {
  const name = (member as { name?: ts.Node }).name;
  if (name && ts.isPrivateIdentifier(name)) return true;
  return (
    ts.canHaveModifiers(member) &&
    !!ts.getModifiers(member)?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword)
  );
}

/** Symbols of the package (not node_modules) named in the types of a declaration. */
function referencedSymbols(declaration: ts.Node, checker: ts.TypeChecker, root: string): ts.Symbol[] {
  const found: ts.Symbol[] = [];
  const visit = (node: ts.Node): void => {
    if (isPrivate(node)) return;
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      // Parameters and the return type are API; the body is not.
      for (const child of [...node.parameters, node.type, ...(node.typeParameters ?? [])])
        if (child) visit(child);
      return;
    }
    if (ts.isPropertyDeclaration(node) && node.initializer && !node.type) return;
    let name: ts.Node | undefined;
    if (ts.isTypeReferenceNode(node)) name = node.typeName;
    else if (ts.isExpressionWithTypeArguments(node)) name = node.expression;
    else if (ts.isTypeQueryNode(node)) name = node.exprName;
    if (name) {
      let symbol = checker.getSymbolAtLocation(ts.isQualifiedName(name) ? name.left : name);
      if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
      const file = symbol?.declarations?.[0]?.getSourceFile().fileName;
      if (symbol && file && !relative(root, file).startsWith('..') && !file.includes('node_modules')) {
        found.push(symbol);
      }
    }
    ts.forEachChild(node, visit);
  };
  if (ts.isVariableDeclaration(declaration)) {
    if (declaration.type) visit(declaration.type);
  } else visit(declaration);
  return found;
}

/** Ends a code block (no blank line before the fence, one after). */
function close(lines: string[]): void {
  if (lines.at(-1) === '') lines.pop();
  lines.push('```', '');
}

/** Reports for every entry, keyed by entry name (`index`, `acme/index`, …). */
export function apiReports({ root, entries }: ReportOptions): Record<string, string> {
  const files = Object.fromEntries(Object.entries(entries).map(([name, file]) => [name, join(root, file)]));
  const program = ts.createProgram(Object.values(files), compilerOptions(root));
  const checker = program.getTypeChecker();
  const emitted = new Map<string, ts.SourceFile>();

  /** The emitted declaration of `symbol`, as text, from its file's declaration output. */
  const declarationText = (symbol: ts.Symbol): string[] => {
    const texts: string[] = [];
    const sources = new Set((symbol.declarations ?? []).map((d) => d.getSourceFile()));
    for (const source of sources) {
      let dts = emitted.get(source.fileName);
      if (!dts) {
        let text = '';
        program.emit(source, (_name, data) => (text = data), undefined, true);
        dts = ts.createSourceFile(`${source.fileName}.d.ts`, text, ts.ScriptTarget.Latest, true);
        emitted.set(source.fileName, dts);
      }
      for (const statement of dts.statements) {
        if (!declaredNames(statement).includes(symbol.name)) continue;
        const printed = printer.printNode(ts.EmitHint.Unspecified, statement, dts);
        texts.push(printed.replace(/^export (default )?/, '').replace(/^declare /, ''));
      }
    }
    return texts;
  };

  const exportsOf = (file: string) => {
    const source = program.getSourceFile(file);
    const module = source && checker.getSymbolAtLocation(source);
    if (!module) throw new Error(`${file}: not a module`);
    return checker
      .getExportsOfModule(module)
      .map((exported) => ({
        name: exported.name,
        target: exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported,
      }))
      .sort((a, b) => a.name.localeCompare(b.name));
  };

  const perEntry = Object.entries(files).map(([entry, file]) => ({ entry, file, exports: exportsOf(file) }));
  const isPublic = new Set(perEntry.flatMap((e) => e.exports.map((x) => x.target)));

  const reports: Record<string, string> = {};
  for (const { entry, file, exports } of perEntry) {
    const specifier = entry === 'index' ? 'certkeeper' : `certkeeper/${entry.replace(/\/index$/, '')}`;
    const lines = [
      `# API of \`${specifier}\``,
      '',
      `Generated from \`${relative(root, file)}\` by \`test/api/report.ts\`; \`npm run api:update\` rewrites it (docs/api-surface.md).`,
      '',
      '## Exported',
      '',
      '```ts',
    ];
    const reached = new Map<string, ts.Symbol>();
    const queue: ts.Symbol[] = [];
    for (const { name, target } of exports) {
      const texts = declarationText(target);
      if (texts.length === 0) throw new Error(`${specifier}: no declaration found for ${name}`);
      if (name !== target.name) lines.push(`// exported as ${name}`);
      lines.push(...texts, '');
      for (const declaration of target.declarations ?? [])
        queue.push(...referencedSymbols(declaration, checker, root));
    }
    while (queue.length > 0) {
      const symbol = queue.shift()!;
      if (isPublic.has(symbol)) continue;
      const file = relative(root, symbol.declarations?.[0]?.getSourceFile().fileName ?? '');
      const key = `${file}#${symbol.name}`;
      if (reached.has(key)) continue;
      reached.set(key, symbol);
      for (const declaration of symbol.declarations ?? [])
        queue.push(...referencedSymbols(declaration, checker, root));
    }
    close(lines);
    if (reached.size > 0) {
      lines.push('## Reached from the exports, not exported', '', '```ts');
      for (const key of [...reached.keys()].sort()) {
        lines.push(`// ${key.replace('#', ': ')}`, ...declarationText(reached.get(key)!), '');
      }
      close(lines);
    }
    reports[entry] = lines.join('\n');
  }
  return reports;
}
