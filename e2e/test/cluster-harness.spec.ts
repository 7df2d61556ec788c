/**
 * Compose and Swarm keep one harness shape (issue 23, point 6): both harnesses extend
 * ClusterHarness (e2e/lib/cluster-harness.ts), a member both have is declared there and nowhere
 * else, and neither platform's lib defines again, or goes around, what e2e/lib holds. The types'
 * side is cluster-harness-shape.ts, which tsc compiles.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ts from 'typescript';
import { REPO_ROOT } from '../../scripts/cluster-lib.mjs';

const SHARED_LIB = 'e2e/lib';
/** Each platform's lib and the interface its harness declares there. */
const PLATFORMS = [
  { lib: 'e2e/test-compose/lib', file: 'cluster.ts', harness: 'Cluster' },
  { lib: 'e2e/test-swarm/lib', file: 'swarm.ts', harness: 'SwarmCluster' },
] as const;
/** Shared members a harness may declare again, to narrow them: what stop() reports is the platform's. */
const NARROWED = new Set(['stop']);
/** Modules the shared helpers wrap (HTTP client, polling, free ports): a platform lib that imports one has grown its own helper. */
const WRAPPED = [/^undici$/, /scripts\/poll\.mjs$/, /^node:child_process$/];

async function parse(path: string): Promise<ts.SourceFile> {
  return ts.createSourceFile(path, await readFile(join(REPO_ROOT, path), 'utf8'), ts.ScriptTarget.Latest, true);
}

async function sourcesOf(dir: string): Promise<ts.SourceFile[]> {
  const names = (await readdir(join(REPO_ROOT, dir))).filter((n) => n.endsWith('.ts')).sort();
  return Promise.all(names.map((n) => parse(`${dir}/${n}`)));
}

function interfaceOf(source: ts.SourceFile, name: string): ts.InterfaceDeclaration {
  const found = source.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name);
  assert.ok(found, `interface ${name} in ${source.fileName}`);
  return found;
}

const memberNames = (i: ts.InterfaceDeclaration): string[] => i.members.flatMap((m) => (m.name && ts.isIdentifier(m.name) ? [m.name.text] : []));

const hasExport = (s: ts.Statement): boolean => ts.canHaveModifiers(s) && (ts.getModifiers(s) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);

/** Names a module's own top-level statements declare (re-exports declare none). */
function declaredNames(source: ts.SourceFile, onlyExported: boolean): string[] {
  return source.statements.flatMap((s) => {
    if (onlyExported && !hasExport(s)) return [];
    if (ts.isVariableStatement(s)) return s.declarationList.declarations.flatMap((d) => (ts.isIdentifier(d.name) ? [d.name.text] : []));
    if (ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s)) return s.name ? [s.name.text] : [];
    if (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s) || ts.isEnumDeclaration(s)) return [s.name.text];
    return [];
  });
}

const importsOf = (source: ts.SourceFile): string[] =>
  source.statements.flatMap((s) => ((ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) && s.moduleSpecifier && ts.isStringLiteral(s.moduleSpecifier) ? [s.moduleSpecifier.text] : []));

describe('one cluster harness shape for Compose and Swarm', () => {
  it('Cluster and SwarmCluster both extend ClusterHarness', async () => {
    for (const p of PLATFORMS) {
      const harness = interfaceOf(await parse(`${p.lib}/${p.file}`), p.harness);
      const bases = (harness.heritageClauses ?? []).flatMap((c) => c.types.map((t) => t.expression.getText()));
      assert.deepEqual(bases, ['ClusterHarness'], `${p.harness} extends ClusterHarness and nothing else`);
    }
  });

  it('a member both harnesses declare is a ClusterHarness member; neither re-declares one except to narrow it', async () => {
    const shared = new Set(memberNames(interfaceOf(await parse(`${SHARED_LIB}/cluster-harness.ts`), 'ClusterHarness')));
    const own = await Promise.all(PLATFORMS.map(async (p) => memberNames(interfaceOf(await parse(`${p.lib}/${p.file}`), p.harness))));
    const [compose = [], swarm = []] = own;
    assert.deepEqual(compose.filter((m) => swarm.includes(m) && !shared.has(m)), [], 'members both have, to declare once in ClusterHarness');
    for (const [i, p] of PLATFORMS.entries()) {
      assert.deepEqual((own[i] ?? []).filter((m) => shared.has(m) && !NARROWED.has(m)), [], `${p.harness} re-declares ClusterHarness members`);
    }
  });

  it('neither platform lib defines a name that e2e/lib exports', async () => {
    const shared = new Map<string, string>();
    for (const source of await sourcesOf(SHARED_LIB)) for (const name of declaredNames(source, true)) shared.set(name, source.fileName);
    assert.ok(shared.has('createHttpClient') && shared.has('waitFor') && shared.has('ClusterHarness'), 'the shared exports were read');
    for (const p of PLATFORMS) {
      for (const source of await sourcesOf(p.lib)) {
        const again = declaredNames(source, false).filter((n) => shared.has(n));
        assert.deepEqual(again.map((n) => `${n} (see ${shared.get(n) ?? ''})`), [], `${source.fileName} defines shared names again`);
      }
    }
  });

  it('neither platform lib imports what the shared helpers wrap, nor the other platform\'s lib', async () => {
    for (const p of PLATFORMS) {
      const other = PLATFORMS.find((q) => q !== p)?.lib.replace(/^e2e\//, '') ?? '';
      for (const source of await sourcesOf(p.lib)) {
        const wrong = importsOf(source).filter((m) => WRAPPED.some((w) => w.test(m)) || m.includes(other));
        assert.deepEqual(wrong, [], `${source.fileName}: use e2e/lib instead`);
      }
    }
  });
});
