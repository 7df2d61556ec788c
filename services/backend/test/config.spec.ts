import assert from 'node:assert/strict';
import { DEFAULT_DELAYS_MS, describeConfig, drainBudgetMs, parseConfig, type BackendEnv, type Config } from '../src/config.js';

const HOST = 'box';

function config(argv: string[], env: BackendEnv = {}): Config {
  const result = parseConfig(argv, env, HOST);
  if (result.kind !== 'config') assert.fail(`expected a config, got ${JSON.stringify(result)}`);
  return result.config;
}

function errors(argv: string[], env: BackendEnv = {}): string {
  const result = parseConfig(argv, env, HOST);
  if (result.kind !== 'errors') assert.fail(`expected errors, got ${JSON.stringify(result)}`);
  return result.errors.join('\n');
}

describe('parseConfig', () => {
  it('has the documented defaults', () => {
    assert.deepEqual(config([]), {
      port: 8002,
      host: '127.0.0.1',
      id: 'box:8002',
      delaysMs: [1000, 3000, 5000, 10000],
      delayScale: 1,
      logLevel: 'info',
      shutdownDelayMs: 0,
      adminToken: '',
    });
    assert.deepEqual(DEFAULT_DELAYS_MS, [1000, 3000, 5000, 10000]);
  });

  it('returns a frozen config', () => {
    const c = config([]);
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.delaysMs));
  });

  const good: [string, string[], BackendEnv, Partial<Config>][] = [
    ['port argument', ['8003'], {}, { port: 8003, id: 'box:8003' }],
    ['BACKEND_PORT', [], { BACKEND_PORT: '9000' }, { port: 9000, id: 'box:9000' }],
    ['argument wins over BACKEND_PORT', ['8004'], { BACKEND_PORT: '9000' }, { port: 8004, id: 'box:8004' }],
    ['highest port', ['65535'], {}, { port: 65535 }],
    ['lowest port', ['1'], {}, { port: 1 }],
    ['BACKEND_HOST', [], { BACKEND_HOST: '0.0.0.0' }, { host: '0.0.0.0' }],
    ['BACKEND_ID', [], { BACKEND_ID: 'backend-7' }, { id: 'backend-7' }],
    ['BACKEND_DELAYS_MS', [], { BACKEND_DELAYS_MS: '10, 20,30.5,0' }, { delaysMs: [10, 20, 30.5, 0] }],
    ['BACKEND_DELAY_SCALE', [], { BACKEND_DELAY_SCALE: '0.01' }, { delayScale: 0.01 }],
    ['BACKEND_DELAY_SCALE zero', [], { BACKEND_DELAY_SCALE: '0' }, { delayScale: 0 }],
    ['BACKEND_DELAY_SCALE exponent', [], { BACKEND_DELAY_SCALE: '1e-2' }, { delayScale: 0.01 }],
    ['BACKEND_LOG_LEVEL', [], { BACKEND_LOG_LEVEL: 'debug' }, { logLevel: 'debug' }],
    ['empty variables count as unset', [], { BACKEND_PORT: '', BACKEND_ID: '', BACKEND_DELAYS_MS: '' }, { port: 8002, id: 'box:8002' }],
    ['other variables are ignored', [], { PORT: 'x', HOME: '/root' }, { port: 8002 }],
  ];
  for (const [name, argv, env, expected] of good) {
    it(`accepts ${name}`, () => {
      const c = config(argv, env);
      for (const [key, value] of Object.entries(expected)) assert.deepEqual(c[key as keyof Config], value, key);
    });
  }

  const bad: [string, string[], BackendEnv, RegExp][] = [
    ['a port that is not a number', ['notaport'], {}, /must be an integer from 1 to 65535, got "notaport"[\s\S]*→ at PORT/],
    ['port 0', ['0'], {}, /must be from 1 to 65535[\s\S]*at PORT/],
    ['port 65536', ['65536'], {}, /must be from 1 to 65535/],
    ['a negative port', ['-1'], {}, /must be an integer[\s\S]*at PORT/],
    ['a fractional port', ['80.5'], {}, /must be an integer/],
    ['a bad BACKEND_PORT', [], { BACKEND_PORT: 'http' }, /at BACKEND_PORT/],
    ['two arguments', ['8002', '8003'], {}, /at most one argument/],
    ['an unknown option', ['--port', '8002'], {}, /unknown option --port/],
    ['delays that are not numbers', [], { BACKEND_DELAYS_MS: '1000,abc,5000,10000' }, /must be a number, got "abc"[\s\S]*BACKEND_DELAYS_MS\[1\]/],
    ['three delays', [], { BACKEND_DELAYS_MS: '1,2,3' }, /exactly 4 delays[\s\S]*BACKEND_DELAYS_MS/],
    ['a negative delay', [], { BACKEND_DELAYS_MS: '1,-2,3,4' }, /must be 0 or more[\s\S]*BACKEND_DELAYS_MS\[1\]/],
    ['a delay past the timer limit', [], { BACKEND_DELAYS_MS: '1,2,3,9e9' }, /at most 600000/],
    ['a negative scale', [], { BACKEND_DELAY_SCALE: '-1' }, /must be 0 or more[\s\S]*BACKEND_DELAY_SCALE/],
    ['a scale that is not a number', [], { BACKEND_DELAY_SCALE: 'fast' }, /must be a number[\s\S]*BACKEND_DELAY_SCALE/],
    ['an infinite scale', [], { BACKEND_DELAY_SCALE: '1e999' }, /must be a finite number[\s\S]*BACKEND_DELAY_SCALE/],
    ['an unknown log level', [], { BACKEND_LOG_LEVEL: 'loud' }, /must be one of fatal, error[\s\S]*BACKEND_LOG_LEVEL/],
    ['a BACKEND_ID that cannot be a header', [], { BACKEND_ID: 'a\nb' }, /printable ASCII[\s\S]*BACKEND_ID/],
  ];
  for (const [name, argv, env, pattern] of bad) {
    it(`rejects ${name}`, () => {
      assert.match(errors(argv, env), pattern);
    });
  }

  it('reports every problem together', () => {
    const result = parseConfig(['70000'], { BACKEND_DELAYS_MS: '1,x,3,4', BACKEND_DELAY_SCALE: '-1', BACKEND_LOG_LEVEL: 'loud' }, HOST);
    assert.equal(result.kind, 'errors');
    const all = result.errors;
    assert.equal(all.length, 4, all.join('\n'));
    for (const where of ['PORT', 'BACKEND_DELAYS_MS[1]', 'BACKEND_DELAY_SCALE', 'BACKEND_LOG_LEVEL']) {
      assert.ok(all.some((e) => e.includes(`→ at ${where}`)), `${where} in ${all.join('\n')}`);
    }
  });

  it('--check: the config to validate, the port argument and env read as without it', () => {
    const result = parseConfig(['--check', '8003'], { BACKEND_ID: 'b7', BACKEND_DELAY_SCALE: '0.5' }, HOST);
    if (result.kind !== 'config') assert.fail(`expected a config, got ${JSON.stringify(result)}`);
    assert.equal(result.check, true);
    assert.equal(result.config.port, 8003);
    assert.equal(
      describeConfig(result.config),
      'listen 127.0.0.1:8003, id b7, delays 1000,3000,5000,10000 ms x 0.5, shutdown delay 0 ms, log level info, fault scenarios refused (no BACKEND_ADMIN_TOKEN)',
    );
    const started = parseConfig(['8003'], {}, HOST);
    assert.equal(started.kind === 'config' && started.check, false);
    assert.match(errors(['--check'], { BACKEND_LOG_LEVEL: 'loud' }), /must be one of[\s\S]*BACKEND_LOG_LEVEL/);
  });

  it('--check never shows the admin token, only whether scenarios are enabled', () => {
    const c = config([], { BACKEND_ADMIN_TOKEN: 's3cret', BACKEND_HOST: '::' });
    assert.equal(describeConfig(c), 'listen [::]:8002, id box:8002, delays 1000,3000,5000,10000 ms x 1, shutdown delay 0 ms, log level info, fault scenarios enabled');
  });

  it('answers --help with the usage', () => {
    const result = parseConfig(['--help'], {}, HOST);
    assert.equal(result.kind, 'help');
    assert.match(result.text, /usage: backend \[PORT\][\s\S]*BACKEND_DELAY_SCALE/);
  });

  it('drains for the slowest image at its scale plus 1 s', () => {
    assert.equal(drainBudgetMs({ delaysMs: DEFAULT_DELAYS_MS, delayScale: 1 }), 11_000);
    assert.equal(drainBudgetMs({ delaysMs: DEFAULT_DELAYS_MS, delayScale: 0.01 }), 1_100);
    assert.equal(drainBudgetMs({ delaysMs: [0, 0, 0, 0], delayScale: 1 }), 1_000);
  });
});
