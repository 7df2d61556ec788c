import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/config.js';
import { POLICIES, POLICY_TABLE, isPolicy } from '../src/picker/policy.js';

// picker/ as a set of equals: one file per policy, named as users name it, and the types they
// share in a module none of them owns.
const pickerDir = fileURLToPath(new URL('../src/picker/', import.meta.url));

describe('picker layout', () => {
  it('the policy table holds exactly the policy names, each accepted by the config and in a file of that name', () => {
    assert.deepEqual(Object.keys(POLICY_TABLE).sort(), [...POLICIES].sort());
    for (const name of Object.keys(POLICY_TABLE)) {
      assert.ok(isPolicy(name), name);
      const r = parseConfig(['--policy', name, '127.0.0.1:8002'], {});
      if (r.kind !== 'config') assert.fail(`${name}: ${JSON.stringify(r)}`);
      assert.equal(r.config.policy, name);
      assert.ok(existsSync(`${pickerDir}${name}.ts`), `picker/${name}.ts`);
    }
  });

  it('no policy file exports a type the others use: the shared ones live in picker/types.ts', () => {
    const policyFiles = readdirSync(pickerDir).filter((f) => isPolicy(f.replace(/\.ts$/, '')));
    assert.equal(policyFiles.length, POLICIES.length);
    for (const file of policyFiles) {
      const text = readFileSync(`${pickerDir}${file}`, 'utf8');
      assert.doesNotMatch(text, /^export (interface|type) /m, file);
    }
  });

  it('every picker file imports the shared types from types.ts, never from a policy', () => {
    for (const file of readdirSync(pickerDir)) {
      const text = readFileSync(`${pickerDir}${file}`, 'utf8');
      for (const m of text.matchAll(/^import type \{[^}]*\} from '\.\/([\w-]+)\.js';/gm)) {
        assert.ok(!isPolicy(m[1] ?? ''), `${file} imports types from ${m[1]}`);
      }
    }
  });
});
