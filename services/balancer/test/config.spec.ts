import assert from 'node:assert/strict';
import { OPTIONS, parseConfig, parseUpstream } from '../src/config.js';

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

  it('the lab is off unless asked for: --lab or LB_LAB=1 turns it on, --no-lab wins over the env; a bad value names the knob', () => {
    assert.equal(ok(['a:1']).config.lab, false);
    assert.equal(ok(['--lab', 'a:1']).config.lab, true);
    for (const on of ['1', 'true', 'yes', 'on']) assert.equal(ok(['a:1'], { LB_LAB: on }).config.lab, true, on);
    for (const off of ['0', 'false', 'no', 'off', '']) assert.equal(ok(['a:1'], { LB_LAB: off }).config.lab, false, off);
    assert.equal(ok(['--no-lab', 'a:1'], { LB_LAB: '1' }).config.lab, false);
    assert.deepEqual(errorsOf(['a:1'], { LB_LAB: 'enabled' }), ['LB_LAB "enabled": expected on or off (1, true, yes, on / 0, false, no, off)']);
    assert.deepEqual(errorsOf(['--lab=2', 'a:1']), ['--lab "2": expected on or off (1, true, yes, on / 0, false, no, off)']);
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
    assert.match(text, /--port "abc": expected an integer 0-65535/);
    assert.match(text, /--tie-break "first": expected one of latency, rotation, random/);
    assert.match(text, /LB_HEALTH_RISE "0": expected an integer 1-100/);
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
    assert.match(text, /--retry-on-status "503,200,abc": "200" is not an HTTP status between 400 and 599/);
    assert.match(text, /"abc" is not an HTTP status/);
    assert.match(text, /--trusted-proxies "10.0.0.0\/33,backend": "10.0.0.0\/33" is not an IP address or CIDR/);
    assert.match(text, /"backend" is not an IP address or CIDR/);
    assert.match(text, /--health-down-interval-ms "0": expected an integer 10-3600000/);
  });

  /**
   * One bad value per option and the whole message it must give: who gave it (flag or env var),
   * the value, and what is accepted. `undefined`: any text is accepted.
   */
  const ON_OFF = 'expected on or off (1, true, yes, on / 0, false, no, off)';
  const BAD: Readonly<Record<string, readonly [string, string] | undefined>> = {
    upstream: ['localhost', 'expected host:port or host:port=weight'],
    host: ['', 'expected a host name or address'],
    port: ['abc', 'expected an integer 0-65535'],
    'admin-host': ['', 'expected a host name or address'],
    'admin-port': ['65536', 'expected an integer 0-65535'],
    'discovery-dns': undefined,
    'discovery-port': ['0', 'expected an integer 1-65535'],
    'discovery-interval-ms': ['99', 'expected an integer 100-3600000'],
    peer: ['balancer-b', 'expected host:port (the peer\'s --peers-port)'],
    'peers-dns': undefined,
    'peers-port': ['65536', 'expected an integer 0-65535'],
    'peer-interval-ms': ['4', 'expected an integer 5-10000'],
    'peer-timeout-ms': ['9', 'expected an integer 10-600000'],
    'peers-dns-interval-ms': ['99', 'expected an integer 100-3600000'],
    'peer-sharing': ['half', ON_OFF],
    policy: ['fastest', 'expected one of least-connections, round-robin, random, p2c, peak-ewma'],
    'tie-break': ['first', 'expected one of latency, rotation, random'],
    explain: ['maybe', ON_OFF],
    'expose-upstream': ['2', ON_OFF],
    'trusted-proxies': ['backend', '"backend" is not an IP address or CIDR (e.g. 10.0.0.0/8, 172.16.0.5, fd00::/8)'],
    'log-level': ['verbose', 'expected one of fatal, error, warn, info, debug, trace, silent'],
    'connect-timeout-ms': ['0', 'expected an integer 1-600000'],
    'headers-timeout-ms': ['1.5', 'expected an integer 1-3600000'],
    'body-timeout-ms': ['-1', 'expected an integer 1-3600000'],
    'keep-alive-timeout-ms': ['600001', 'expected an integer 1-600000'],
    retries: ['11', 'expected an integer 0-10'],
    'retry-on-status': ['200', '"200" is not an HTTP status between 400 and 599'],
    'try-timeout-ms': ['soon', 'expected an integer 0-3600000'],
    panic: ['sometimes', ON_OFF],
    'health-path': ['healthz', 'expected a path starting with /'],
    'health-interval-ms': ['3600001', 'expected an integer 0-3600000'],
    'health-down-interval-ms': ['9', 'expected an integer 10-3600000'],
    'health-max-body-bytes': ['16777217', 'expected an integer 0-16777216'],
    'health-timeout-ms': ['0', 'expected an integer 1-600000'],
    'health-rise': ['0', 'expected an integer 1-100'],
    'health-fall': ['101', 'expected an integer 1-100'],
    'passive-down-ms': ['0', 'expected an integer 1-3600000'],
    'shutdown-timeout-ms': ['x', 'expected an integer 0-3600000'],
    lab: ['sometimes', ON_OFF],
    'admin-token': undefined,
    'admin-token-file': undefined,
    'backend-admin-token': undefined,
    'max-in-flight': ['-1', 'expected an integer 0-1000000'],
    'queue-length': ['1000001', 'expected an integer 0-1000000'],
    'queue-timeout-ms': ['0', 'expected an integer 1-3600000'],
    'slow-start-ms': ['1m', 'expected an integer 0-3600000'],
    'retry-budget-percent': ['101', 'expected an integer 0-100'],
    'retry-budget-min': ['-5', 'expected an integer 0-1000000'],
    'request-timeout-ms': ['NaN', 'expected an integer 0-3600000'],
    'client-header-timeout-ms': ['0', 'expected an integer 1-3600000'],
    'client-keep-alive-timeout-ms': ['0', 'expected an integer 1-3600000'],
    'max-header-bytes': ['1023', 'expected an integer 1024-1048576'],
    'passive-failures': ['0', 'expected an integer 1-1000000'],
    'passive-window-ms': ['0', 'expected an integer 1-3600000'],
    'passive-5xx': ['maybe', ON_OFF],
    workers: ['lots', 'expected an integer 1-256 or "auto"'],
    'events-interval-ms': ['19', 'expected an integer 20-60000'],
  };

  it('the bad-value table covers every option, and every option has a flag and an env twin', () => {
    assert.deepEqual(OPTIONS.map((o) => o.meta.flag).sort(), Object.keys(BAD).sort());
    for (const { meta } of OPTIONS) assert.match(meta.env, /^LB_[A-Z0-9_]+$/, meta.flag);
  });

  for (const { meta } of OPTIONS) {
    const bad = BAD[meta.flag];
    if (bad === undefined) {
      it(`--${meta.flag} / ${meta.env} accepts any text`, () => {
        const argv = meta.flag === 'admin-token-file' ? [] : [`--${meta.flag}`, 'any "text" at all'];
        ok([...argv, 'a:1']);
      });
      continue;
    }
    const [value, accepted] = bad;
    it(`--${meta.flag} / ${meta.env} "${value}": names the flag or env var, the value and what is accepted`, () => {
      const args = meta.flag === 'upstream' ? ['--upstream', value] : [`--${meta.flag}=${value}`, 'a:1'];
      assert.deepEqual(errorsOf(args), [`--${meta.flag} "${value}": ${accepted}`]);
      // Empty env values are ignored (unset), so the env case needs a non-empty bad value.
      if (value === '') return;
      const env = meta.flag === 'upstream' ? { LB_UPSTREAMS: value } : { [meta.env]: value };
      assert.deepEqual(errorsOf(meta.flag === 'upstream' ? [] : ['a:1'], env), [`${meta.env} "${value}": ${accepted}`]);
    });
  }

  it('never prints the validation library\'s own text', () => {
    const text = errorsOf(['--port', 'abc', '--workers', 'lots', '--log-level', 'loud', 'a:1']).join('\n');
    assert.doesNotMatch(text, /Invalid input|expected number|received NaN/);
    assert.match(text, /--port "abc": expected an integer 0-65535/);
    assert.match(text, /--workers "lots": expected an integer 1-256 or "auto"/);
  });

  it('parses argv with node:util parseArgs: --flag=value, --flag value, -- ends the options, a flag is not a value', () => {
    const { config } = ok(['--port=7000', '--retries', '3', '--', 'a:1']);
    assert.equal(config.port, 7000);
    assert.equal(config.retries, 3);
    assert.deepEqual(errorsOf(['--admin-port', '--port', '1', 'a:1']), ['option --admin-port needs a value (got the flag --port)', 'upstream "1": expected host:port or host:port=weight']);
    assert.deepEqual(errorsOf(['-p', 'a:1']), ['unknown option -p (see --help)']);
  });

  it('names the source of each upstream at fault: argument, --upstream or LB_UPSTREAMS', () => {
    assert.deepEqual(errorsOf(['a:1', '--upstream', 'a:1=2']), ['--upstream "a:1=2": listed twice']);
    assert.deepEqual(errorsOf(['b', '--upstream', 'a:1']), ['upstream "b": expected host:port or host:port=weight']);
    assert.deepEqual(errorsOf([], { LB_UPSTREAMS: 'a:1,a:70000' }), ['LB_UPSTREAMS "a:70000": port must be 1-65535']);
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
