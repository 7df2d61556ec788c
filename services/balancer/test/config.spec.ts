import assert from 'node:assert/strict';
import { parseConfig, parseUpstream } from '../src/config.js';

const ok = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseConfig(argv, env);
  if (r.kind !== 'config') throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r;
};
const errorsOf = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseConfig(argv, env);
  if (r.kind !== 'error') throw new Error(`expected errors, got ${r.kind}`);
  return r.errors;
};

describe('config', () => {
  it('works like the original: positional upstreams, 127.0.0.1:8001 by default', () => {
    const { config, check } = ok(['127.0.0.1:8002', '127.0.0.1:8003']);
    assert.equal(check, false);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 8001);
    assert.equal(config.adminPort, 9001);
    assert.deepEqual(config.upstreams, [
      { host: '127.0.0.1', port: 8002, weight: 1 },
      { host: '127.0.0.1', port: 8003, weight: 1 },
    ]);
    assert.equal(config.tieBreak, 'latency');
    assert.equal(config.explain, false);
    assert.ok(Object.isFrozen(config));
  });

  const upstreams: [string, ReturnType<typeof parseUpstream>][] = [
    ['backend:8002', { host: 'backend', port: 8002, weight: 1 }],
    ['10.0.0.5:80=3', { host: '10.0.0.5', port: 80, weight: 3 }],
    ['http://localhost:8002', { host: 'localhost', port: 8002, weight: 1 }],
    ['[::1]:8002=2', { host: '::1', port: 8002, weight: 2 }],
    ['localhost', 'upstream "localhost": expected host:port or host:port=weight'],
    ['a:70000', 'upstream "a:70000": port must be 1-65535'],
    ['a:80=0', 'upstream "a:80": weight must be 1-1000'.replace('a:80', 'a:80=0')],
  ];
  for (const [text, expected] of upstreams) {
    it(`parses upstream ${text}`, () => {
      assert.deepEqual(parseUpstream(text), expected);
    });
  }

  it('reads env, and flags win over env', () => {
    const env = { LB_PORT: '9000', LB_UPSTREAMS: 'a:1,b:2=5', LB_TIE_BREAK: 'random', LB_EXPLAIN: '1' };
    const fromEnv = ok([], env).config;
    assert.equal(fromEnv.port, 9000);
    assert.equal(fromEnv.tieBreak, 'random');
    assert.equal(fromEnv.explain, true);
    assert.deepEqual(fromEnv.upstreams.map((u) => u.weight), [1, 5]);
    const flagged = ok(['--port', '7000', '--tie-break=rotation', '--upstream', 'c:3'], env).config;
    assert.equal(flagged.port, 7000);
    assert.equal(flagged.tieBreak, 'rotation');
    assert.deepEqual(flagged.upstreams.map((u) => u.host), ['c']);
  });

  it('accepts DNS discovery instead of a list', () => {
    const { config } = ok([], { LB_DISCOVERY_DNS: 'backend', LB_DISCOVERY_PORT: '8002' });
    assert.deepEqual(config.discovery, { name: 'backend', port: 8002, intervalMs: 1000 });
  });

  it('reports every problem at once', () => {
    const errors = errorsOf(['--port', 'abc', '--tie-break', 'first', '--bogus', 'x:99999', '--admin-port'], { LB_HEALTH_RISE: '0' });
    const text = errors.join('\n');
    assert.match(text, /unknown option --bogus/);
    assert.match(text, /--admin-port needs a value/);
    assert.match(text, /--port \/ LB_PORT/);
    assert.match(text, /--tie-break \/ LB_TIE_BREAK/);
    assert.match(text, /--health-rise \/ LB_HEALTH_RISE/);
    assert.match(text, /port must be 1-65535/);
    assert.ok(errors.length >= 6, text);
  });

  it('fault options (#13): defaults, lists, --no-<flag> for booleans, and clear messages for bad values', () => {
    const { config } = ok(['a:1']);
    assert.deepEqual(config.retryOnStatus, [502, 503, 504]);
    assert.equal(config.panic, true);
    assert.equal(config.exposeUpstream, false);
    assert.deepEqual(config.trustedProxies, []);
    assert.equal(config.tryTimeoutMs, 0);
    assert.equal(config.health.downIntervalMs, 250);
    assert.equal(config.health.maxBodyBytes, 65536);
    const set = ok(['a:1', '--no-panic', '--expose-upstream', '--retry-on-status', 'none', '--trusted-proxies', '10.0.0.0/8, 172.20.0.5,fd00::/8'], {}).config;
    assert.equal(set.panic, false);
    assert.equal(set.exposeUpstream, true);
    assert.deepEqual(set.retryOnStatus, []);
    assert.deepEqual(set.trustedProxies, ['10.0.0.0/8', '172.20.0.5/32', 'fd00::/8']);
    const env = ok(['a:1'], { LB_PANIC: 'off', LB_RETRY_ON_STATUS: '503,429', LB_TRUSTED_PROXIES: '::1' }).config;
    assert.equal(env.panic, false);
    assert.deepEqual(env.retryOnStatus, [503, 429]);
    assert.deepEqual(env.trustedProxies, ['::1/128']);
    const text = errorsOf(['a:1', '--retry-on-status', '503,200,abc', '--trusted-proxies', '10.0.0.0/33,backend', '--health-down-interval-ms', '0']).join('\n');
    assert.match(text, /--retry-on-status \/ LB_RETRY_ON_STATUS: "200" is not an HTTP status between 400 and 599/);
    assert.match(text, /"abc" is not an HTTP status/);
    assert.match(text, /--trusted-proxies \/ LB_TRUSTED_PROXIES: "10.0.0.0\/33" is not an IP address or CIDR/);
    assert.match(text, /"backend" is not an IP address or CIDR/);
    assert.match(text, /--health-down-interval-ms \/ LB_HEALTH_DOWN_INTERVAL_MS/);
  });

  it('refuses to run without upstreams, and duplicate upstreams', () => {
    assert.match(errorsOf([]).join(), /no upstreams/);
    assert.match(errorsOf(['a:1', 'a:1=2']).join(), /listed twice/);
  });

  it('--check and --help', () => {
    assert.equal(ok(['--check', 'a:1']).check, true);
    const help = parseConfig(['--help'], {});
    if (help.kind !== 'help') throw new Error('expected help');
    assert.match(help.text, /Usage: balancer/);
    assert.match(help.text, /--admin-port V .*\[LB_ADMIN_PORT\]/);
  });

  it('reads the admin token from --admin-token-file (a Docker secret), trimmed; refuses both or an unreadable file', () => {
    const files: Record<string, string> = { '/run/secrets/t': 's3cret\n', '/run/secrets/empty': '' };
    const read = (path: string): string => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return text;
    };
    const parsed = (argv: string[], env: Record<string, string> = {}) => parseConfig(argv, env, read);
    const fromFile = parsed(['--admin-token-file', '/run/secrets/t', 'a:1']);
    assert.equal(fromFile.kind === 'config' && fromFile.config.adminToken, 's3cret');
    const fromEnv = parsed(['a:1'], { LB_ADMIN_TOKEN_FILE: '/run/secrets/empty' });
    assert.equal(fromEnv.kind === 'config' && fromEnv.config.adminToken, '', 'an empty file: no token, writes refused');
    const both = parsed(['--admin-token', 'x', '--admin-token-file', '/run/secrets/t', 'a:1']);
    assert.match(both.kind === 'error' ? both.errors.join() : '', /give one, not both/);
    const missing = parsed(['--admin-token-file', '/nope', 'a:1']);
    assert.match(missing.kind === 'error' ? missing.errors.join() : '', /cannot read \/nope \(ENOENT\)/);
  });
});
