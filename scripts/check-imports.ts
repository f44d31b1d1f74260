/**
 * The import graph and size rules of src/ and workers/ (see docs/architecture.md):
 *
 *   a. no import cycles (type-only imports count: they tie the files' designs together all the same);
 *   b. the platform imports nothing from the sentry: sentry files are src/sentry/** and
 *      workers/sentry.ts; src/index.ts, src/cli*.ts and src/scenario/** may import both; every
 *      other file is platform;
 *   c. no underscore reach-ins: no member access `x._name` (nor `x['_name']`), `this._x` included;
 *   d. no file over 450 lines (except the generated-style tables in FILE_ALLOWLIST) and no function
 *      over 80 lines (function declarations and expressions, methods, constructors, accessors, arrow
 *      functions).
 *
 * Imports are read with the TypeScript compiler's parser, so that `import type`, `export … from`,
 * `import x = require('…')`, `typeof import('…')` and dynamic `import('…')` with a string literal all
 * count. Only relative specifiers that land on a checked file are edges; packages are ignored.
 *
 * Usage: node --import=tsx scripts/check-imports.ts [--root DIR]
 * Prints the violations grouped by rule and exits 1 if there are any; prints one line and exits
 * 0 otherwise.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const MAX_FILE_LINES = 450;
export const MAX_FUNCTION_LINES = 80;

/**
 * Files allowed over MAX_FILE_LINES: tables rather than code. Matched by parent folder and name,
 * so that a move (src/sentry/decode/ → src/sentry/strace/decode/) keeps them allowed.
 */
export const FILE_ALLOWLIST = ['abi/syscalls.ts', 'decode/flags.ts', 'decode/structs.ts'];

export type Rule = 'cycle' | 'sentry-boundary' | 'underscore' | 'file-length' | 'function-length';

export interface Violation {
  rule: Rule;
  /** Repository-relative path, '/'-separated. */
  file: string;
  line?: number;
  message: string;
}

interface Edge {
  to: string;
  line: number;
  typeOnly: boolean;
}

const RULE_TITLES: Record<Rule, string> = {
  cycle: 'a. import cycles',
  'sentry-boundary': 'b. platform files importing the sentry',
  underscore: 'c. underscore reach-ins',
  'file-length': `d. files over ${MAX_FILE_LINES} lines`,
  'function-length': `d. functions over ${MAX_FUNCTION_LINES} lines`,
};

/** src/**\/*.ts and workers/**\/*.ts under root, repository-relative, sorted. */
function sourceFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    let entries: string[];
    try {
      entries = readdirSync(join(root, dir));
    } catch {
      return; // no such folder in this tree
    }
    for (const name of entries.sort()) {
      const rel = `${dir}/${name}`;
      if (statSync(join(root, rel)).isDirectory()) walk(rel);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(rel);
    }
  };
  walk('src');
  walk('workers');
  return out;
}

/** Which side of the platform/sentry line a file is on. */
export function kind(file: string): 'sentry' | 'both' | 'platform' {
  if (file.startsWith('src/sentry/') || file === 'workers/sentry.ts') return 'sentry';
  if (file === 'src/index.ts' || /^src\/cli[^/]*\.ts$/.test(file) || file.startsWith('src/scenario/')) return 'both';
  return 'platform';
}

/** The checked file a relative specifier names (NodeNext: './x.js' is ./x.ts), if any. */
function resolveSpecifier(from: string, spec: string, files: Set<string>): string | undefined {
  if (!spec.startsWith('./') && !spec.startsWith('../')) return undefined;
  const base = join(dirname(from), spec).split(sep).join('/');
  const candidates = [base, base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), `${base}.ts`, `${base}/index.ts`];
  return candidates.find((c) => files.has(c));
}

const lineOf = (sf: ts.SourceFile, node: ts.Node) => sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;

/** Every module specifier of a file, with its line and whether only types come through it. */
function specifiers(sf: ts.SourceFile): Array<{ spec: string; line: number; typeOnly: boolean }> {
  const out: Array<{ spec: string; line: number; typeOnly: boolean }> = [];
  const add = (lit: ts.Expression | ts.ModuleReference | undefined, node: ts.Node, typeOnly: boolean) => {
    if (lit && (ts.isStringLiteral(lit) || ts.isNoSubstitutionTemplateLiteral(lit))) out.push({ spec: lit.text, line: lineOf(sf, node), typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const typeOnly = !!clause && (clause.isTypeOnly || (!clause.name && !!clause.namedBindings && ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, node, typeOnly);
    } else if (ts.isExportDeclaration(node)) {
      add(node.moduleSpecifier, node, node.isTypeOnly);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], node, false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal as ts.Expression, node, true);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The name a function is known by in a report: `name`, `Class.method`, `(arrow)`. */
function functionName(node: ts.Node, sf: ts.SourceFile): string {
  const owner = (n: ts.Node) => (n.parent && (ts.isClassDeclaration(n.parent) || ts.isClassExpression(n.parent)) && n.parent.name ? `${n.parent.name.text}.` : '');
  if ((ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node)) && node.name) return node.name.text;
  if (ts.isConstructorDeclaration(node)) return `${owner(node)}constructor`;
  if ((ts.isMethodDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) && node.name) return `${owner(node)}${node.name.getText(sf)}`;
  const p = node.parent;
  if (p && (ts.isVariableDeclaration(p) || ts.isPropertyDeclaration(p) || ts.isPropertyAssignment(p)) && p.name) return `${ts.isPropertyDeclaration(p) ? owner(p) : ''}${p.name.getText(sf)}`;
  return ts.isArrowFunction(node) ? '(arrow function)' : '(function)';
}

/** Checks the tree under root; returns the violations, in a stable order. */
export function checkImports(root: string): Violation[] {
  const files = sourceFiles(root);
  const fileSet = new Set(files);
  const graph = new Map<string, Edge[]>();
  const violations: Violation[] = [];

  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8');
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    const edges: Edge[] = [];
    for (const s of specifiers(sf)) {
      const to = resolveSpecifier(file, s.spec, fileSet);
      if (to) edges.push({ to, line: s.line, typeOnly: s.typeOnly });
    }
    graph.set(file, edges);

    // b. The platform/sentry line.
    if (kind(file) === 'platform') {
      for (const e of edges) {
        if (kind(e.to) === 'sentry') violations.push({ rule: 'sentry-boundary', file, line: e.line, message: `imports ${e.typeOnly ? 'types from ' : ''}the sentry file ${e.to}` });
      }
    }

    // c, d. Reach-ins and long functions, from the syntax tree.
    const visit = (node: ts.Node): void => {
      if (ts.isPropertyAccessExpression(node) && /^_[A-Za-z]/.test(node.name.text)) {
        violations.push({ rule: 'underscore', file, line: lineOf(sf, node.name), message: `${node.expression.getText(sf).split('\n')[0]}.${node.name.text}` });
      } else if (ts.isElementAccessExpression(node) && ts.isStringLiteralLike(node.argumentExpression) && /^_[A-Za-z]/.test(node.argumentExpression.text)) {
        violations.push({ rule: 'underscore', file, line: lineOf(sf, node), message: node.getText(sf).split('\n')[0] });
      }
      if (
        (ts.isFunctionDeclaration(node) || ts.isFunctionExpression(node) || ts.isArrowFunction(node) || ts.isMethodDeclaration(node) || ts.isConstructorDeclaration(node) || ts.isGetAccessor(node) || ts.isSetAccessor(node)) &&
        node.body
      ) {
        const start = lineOf(sf, node);
        const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
        if (end - start + 1 > MAX_FUNCTION_LINES) violations.push({ rule: 'function-length', file, line: start, message: `${functionName(node, sf)}: ${end - start + 1} lines` });
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);

    const lines = text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
    const allowed = FILE_ALLOWLIST.includes(`${basename(dirname(file))}/${basename(file)}`);
    if (lines > MAX_FILE_LINES && !allowed) violations.push({ rule: 'file-length', file, message: `${lines} lines` });
  }

  violations.push(...cycles(graph));
  const order = Object.keys(RULE_TITLES);
  return violations.sort((x, y) => order.indexOf(x.rule) - order.indexOf(y.rule) || x.file.localeCompare(y.file) || (x.line ?? 0) - (y.line ?? 0) || x.message.localeCompare(y.message));
}

/**
 * a. Cycles. Every import edge that lies on a cycle (both ends in one strongly connected
 * component) is reported with the shortest way back: `a → b → … → a`. The same cycle reached
 * from several of its edges is reported once. That names every edge to cut without listing
 * the (possibly exponential) number of all elementary cycles.
 */
function cycles(graph: Map<string, Edge[]>): Violation[] {
  const component = stronglyConnected(graph);
  const seen = new Set<string>();
  const out: Violation[] = [];
  for (const [from, edges] of [...graph].sort(([a], [b]) => a.localeCompare(b))) {
    for (const e of edges) {
      if (component.get(e.to) !== component.get(from)) continue;
      const back = shortestPath(graph, e.to, from, (n) => component.get(n) === component.get(from));
      if (!back) continue;
      const cycle = [from, ...back]; // from → e.to → … → from
      const ring = cycle.slice(0, -1);
      // One name per cycle whatever node it starts from: rotate to its smallest file.
      const k = ring.indexOf([...ring].sort()[0]);
      const canonical = [...ring.slice(k), ...ring.slice(0, k)];
      const key = canonical.join(' ');
      if (seen.has(key)) continue;
      seen.add(key);
      const typeOnly = cycle.slice(0, -1).every((f, i) => graph.get(f)!.filter((x) => x.to === cycle[i + 1]).every((x) => x.typeOnly));
      out.push({ rule: 'cycle', file: canonical[0], message: `${[...canonical, canonical[0]].join(' → ')}${typeOnly ? ' (type-only imports)' : ''}` });
    }
  }
  return out;
}

/** Tarjan's algorithm, iterative: file → component number. */
function stronglyConnected(graph: Map<string, Edge[]>): Map<string, number> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const comp = new Map<string, number>();
  let next = 0;
  let count = 0;
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: Array<{ node: string; i: number }> = [{ node: start, i: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const edges = graph.get(top.node) ?? [];
      if (top.i < edges.length) {
        const to = edges[top.i++].to;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, i: 0 });
        } else if (onStack.has(to)) {
          low.set(top.node, Math.min(low.get(top.node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].node;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.node)!));
      }
      if (low.get(top.node) === index.get(top.node)) {
        let n: string;
        do {
          n = stack.pop()!;
          onStack.delete(n);
          comp.set(n, count);
        } while (n !== top.node);
        count++;
      }
    }
  }
  return comp;
}

/** Breadth-first: the files from `from` to `to` (both included), through files that pass `inside`. */
function shortestPath(graph: Map<string, Edge[]>, from: string, to: string, inside: (f: string) => boolean): string[] | undefined {
  const prev = new Map<string, string | null>([[from, null]]);
  const queue = [from];
  while (queue.length > 0) {
    const n = queue.shift()!;
    if (n === to) {
      const path: string[] = [];
      for (let c: string | null = n; c !== null; c = prev.get(c)!) path.unshift(c);
      return path;
    }
    for (const e of graph.get(n) ?? []) {
      if (!prev.has(e.to) && inside(e.to)) {
        prev.set(e.to, n);
        queue.push(e.to);
      }
    }
  }
  return undefined;
}

/** The readable report: violations grouped by rule, one per line, and a count. */
export function formatViolations(violations: Violation[]): string {
  if (violations.length === 0) return 'check-imports: no violations\n';
  const lines: string[] = [];
  for (const [rule, title] of Object.entries(RULE_TITLES) as Array<[Rule, string]>) {
    const of = violations.filter((v) => v.rule === rule);
    if (of.length === 0) continue;
    lines.push(`${title} (${of.length}):`);
    for (const v of of) lines.push(rule === 'cycle' ? `  ${v.message}` : `  ${v.file}${v.line ? `:${v.line}` : ''}: ${v.message}`);
    lines.push('');
  }
  lines.push(`check-imports: ${violations.length} violation${violations.length === 1 ? '' : 's'}`);
  return lines.join('\n') + '\n';
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--root');
  const root = at >= 0 ? resolve(args[at + 1] ?? '.') : resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const violations = checkImports(root);
  process.stdout.write(formatViolations(violations));
  process.exitCode = violations.length === 0 ? 0 : 1;
}
