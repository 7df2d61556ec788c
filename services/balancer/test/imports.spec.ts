import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// No circles, no arrows back up: the balancer's modules import one another along a directed graph
// without cycles, file by file and folder by folder (a folder that imports from another is never
// imported back by it).
const srcDir = fileURLToPath(new URL('../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

/** The relative imports of every source file (type-only ones too): file → files it imports. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(srcDir)) {
    const text = readFileSync(file, 'utf8');
    const targets = [...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+'(\.{1,2}\/[^']+)'/gm)].map((m) =>
      relative(srcDir, resolve(dirname(file), (m[1] ?? '').replace(/\.js$/, '.ts'))),
    );
    graph.set(relative(srcDir, file), targets);
  }
  return graph;
}

/** One cycle of the graph (its nodes, the first repeated at the end), or undefined: depth-first search. */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  const done = new Set<string>();
  const path: string[] = [];
  const onPath = new Set<string>();
  const visit = (node: string): string[] | undefined => {
    if (onPath.has(node)) return [...path.slice(path.indexOf(node)), node];
    if (done.has(node)) return undefined;
    onPath.add(node);
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle !== undefined) return cycle;
    }
    path.pop();
    onPath.delete(node);
    done.add(node);
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle !== undefined) return cycle;
  }
  return undefined;
}

/** The folder of a source file: 'picker' for picker/policy.ts, '.' for the top-level files. */
const folderOf = (file: string): string => dirname(file);

describe('imports', () => {
  it('finds every relative import (sanity: the graph is the source tree)', () => {
    const graph = importGraph();
    assert.ok(graph.has('server.ts'));
    assert.ok(graph.get('picker/policy.ts')?.includes('picker/types.ts'));
    for (const targets of graph.values()) for (const t of targets) assert.ok(graph.has(t), `${t} is not a source file`);
  });

  it('finds a cycle when there is one', () => {
    assert.deepEqual(findCycle(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]])), ['a', 'b', 'c', 'a']);
    assert.equal(findCycle(new Map([['a', ['b', 'c']], ['b', ['c']], ['c', []]])), undefined);
  });

  it('no file imports itself through others', () => {
    const cycle = findCycle(importGraph());
    assert.equal(cycle, undefined, `import cycle: ${cycle?.join(' → ')}`);
  });

  it('the lab is an optional part: admin/ imports nothing from lab/, nor lab/ from admin/ (only server.ts wires them)', () => {
    const graph = importGraph();
    const crossing = (from: string, to: string): string[] =>
      [...graph].flatMap(([file, targets]) => (folderOf(file) === from ? targets.filter((t) => folderOf(t) === to).map((t) => `${file} → ${t}`) : []));
    assert.ok([...graph.keys()].some((f) => folderOf(f) === 'admin') && [...graph.keys()].some((f) => folderOf(f) === 'lab'), 'both folders exist');
    assert.deepEqual(crossing('admin', 'lab'), []);
    assert.deepEqual(crossing('lab', 'admin'), []);
    const wiredBy = [...graph].filter(([, targets]) => targets.some((t) => folderOf(t) === 'lab')).map(([file]) => file).filter((f) => folderOf(f) !== 'lab');
    assert.deepEqual(wiredBy, ['server.ts'], 'outside lab/, only the composition root imports it');
  });

  it('no folder imports back from a folder that imports it (top-level files stay out of it)', () => {
    const folders = new Map<string, Set<string>>();
    for (const [file, targets] of importGraph()) {
      const from = folderOf(file);
      if (from === '.') continue;
      for (const t of targets) {
        const to = folderOf(t);
        if (to === '.' || to === from) continue;
        folders.set(from, (folders.get(from) ?? new Set()).add(to));
      }
    }
    const graph = new Map([...folders].map(([k, v]) => [k, [...v]]));
    const cycle = findCycle(graph);
    assert.equal(cycle, undefined, `folders importing each other: ${cycle?.join(' → ')}`);
  });
});
