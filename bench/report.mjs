// Turns the list of runs into medians, ratios to nginx, and the Markdown of bench/RESULTS.md.
// Pure functions: no I/O here.

import { BALANCER_TARGETS } from './targets.mjs';

/** The load scenarios: URL path on the bench backends and what the report calls them. */
export const SCENARIOS = {
  tiny: { path: '/tiny', title: 'Tiny body (GET /tiny, 3 bytes)' },
  '16k': { path: '/16k', title: '16 KiB body (GET /16k)' },
  slow: { path: '/slow', title: 'Slow backend (GET /slow, 3 bytes; backend 4 of 4 adds {slowMs} ms)' },
};

/** { median, min, max } of the finite numbers in `values`, or null if there are none. */
export function spread(values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = Math.floor(xs.length / 2);
  const median = xs.length % 2 === 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
  return { median, min: xs[0], max: xs[xs.length - 1] };
}

const METRICS = ['rps', 'p50Ms', 'p99Ms', 'cpuUsPerRequest', 'slowShare', 'slowRps'];
const RATIOS = ['rps', 'p50Ms', 'p99Ms', 'cpuUsPerRequest'];

/** Per metric: the spread of `mine`'s ratios to `reference`'s run in the same round and scenario. */
function ratiosTo(runs, mine, reference, metrics) {
  const out = {};
  for (const m of metrics) {
    out[m] = spread(mine.map((r) => {
      const ref = runs.find((n) => n.scenario === r.scenario && n.round === r.round && n.target === reference);
      return ref && typeof r[m] === 'number' && ref[m] > 0 ? r[m] / ref[m] : null;
    }));
  }
  return out;
}

/**
 * Per scenario and target: medians (min–max) over rounds, total errors, and each metric's ratio
 * to nginx *in the same round and scenario*, then the median of those ratios (CPU per request
 * also to the plain undici proxy's). Ratios within a round cancel most of the drift of a shared
 * machine, which absolute numbers do not.
 */
export function summarise(runs, scenarios, targets) {
  const summary = {};
  for (const scenario of scenarios) {
    summary[scenario] = {};
    for (const target of targets) {
      const mine = runs.filter((r) => r.scenario === scenario && r.target === target);
      const entry = { runs: mine.length, errors: mine.reduce((n, r) => n + r.errorCount + r.warmupErrorCount, 0) };
      for (const m of METRICS) entry[m] = spread(mine.map((r) => r[m]));
      entry.vsNginx = ratiosTo(runs, mine, 'nginx', RATIOS);
      entry.vsPlain = ratiosTo(runs, mine, 'plain', ['cpuUsPerRequest']);
      summary[scenario][target] = entry;
    }
  }
  return summary;
}

/** "12 345 (12 001–12 700)" style: median, then the range when there was more than one round. */
function fmt(s, digits, suffix = '') {
  if (s === null) return '—';
  const f = (v) => v.toFixed(digits);
  return s.min === s.max ? `${f(s.median)}${suffix}` : `${f(s.median)}${suffix} (${f(s.min)}–${f(s.max)})`;
}

function pct(s) {
  if (s === null) return '—';
  return fmt({ median: s.median * 100, min: s.min * 100, max: s.max * 100 }, 1, ' %');
}

/**
 * One row per balancer target (and the plain undici proxy), per scenario: req/s and p99 against
 * nginx, CPU per request against the plain proxy (the goals of issue 24), before the full tables.
 * Empty when nginx or every balancer target was left out.
 */
function balancerOverview(settings, summary) {
  const mine = settings.targets.filter((t) => t === 'plain' || BALANCER_TARGETS.includes(t));
  if (!settings.targets.includes('nginx') || mine.length === 0) return [];
  const plain = settings.targets.includes('plain');
  const head = ['target'];
  for (const scenario of settings.scenarios) {
    head.push(`${scenario} req/s ÷ nginx`, `${scenario} p99 ÷ nginx`, plain ? `${scenario} CPU ÷ plain` : `${scenario} CPU ÷ nginx`);
    if (scenario === 'slow') head.push('slow share (nginx)');
  }
  const out = ['## Our balancer against nginx and the plain undici proxy', '',
    'Medians of the per-round ratios from the tables below (req/s above 1, p99 and CPU per request below 1 beat the reference);',
    `CPU per request is compared with ${plain ? "the plain undici proxy's" : "nginx's (the plain proxy was left out)"};`,
    "the slow share is backend 4's share of the slow scenario's requests, nginx's in brackets.", '',
    `| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  const median = (s, digits) => (s === null ? '—' : s.median.toFixed(digits));
  const share = (s) => (s === null ? '—' : `${(s.median * 100).toFixed(1)} %`);
  for (const target of mine) {
    const row = [`**${target}**`];
    for (const scenario of settings.scenarios) {
      const s = summary[scenario][target];
      row.push(median(s.vsNginx.rps, 2), median(s.vsNginx.p99Ms, 2), median(plain ? s.vsPlain.cpuUsPerRequest : s.vsNginx.cpuUsPerRequest, 2));
      if (scenario === 'slow') row.push(`${share(s.slowShare)} (${share(summary[scenario].nginx.slowShare)})`);
    }
    out.push(`| ${row.join(' | ')} |`);
  }
  out.push('');
  return out;
}

/** The Markdown of bench/RESULTS.md. `meta` carries machine, versions, settings and the command. */
export function renderMarkdown({ meta, settings, summary, runs, failures }) {
  const out = [];
  out.push('# Benchmark: balancer vs nginx least_conn vs HAProxy leastconn vs a plain undici proxy', '');
  out.push('Written by `bench/run.mjs` (`make bench` / `npm run bench`); rerun it rather than editing this file.', '');
  if (failures.length > 0) {
    out.push('**THIS RUN FAILED** (the harness exited 1):', '', ...failures.map((f) => `- ${f}`), '');
  }
  out.push(
    `- Date: ${meta.date}`,
    `- Command: \`${meta.command}\``,
    `- Machine: ${meta.machine.nproc} CPUs (nproc), ${meta.machine.cpuModel}, ${meta.machine.memGiB} GiB RAM, Linux ${meta.machine.kernel}; load average ${meta.machine.loadStart} at start, ${meta.machine.loadEnd} at end`,
    `- Versions: node ${meta.versions.node}, ${meta.versions.nginx}, ${meta.versions.haproxy}, ${meta.versions.wrk}, balancer ${meta.versions.balancer}`,
    `- Load: \`${meta.wrkCommand}\` after a discarded ${settings.warmup} s warm-up; ${settings.rounds} round(s), each round runs every scenario and in it every target in turn (${settings.targets.join(', ')}); each target is started for its run and stopped after it.`,
    `- Backends: 4 × \`bench/origin.mjs\` (node:http, keep-alive, one process each), the same 4 processes for the whole bench; per-backend request counters are read after each run and reset after each warm-up.`,
    '- Memory with 10,000 idle keep-alive client connections (issue 7: RSS < 200 MB) is measured separately: `bench/CONNECTIONS.md` (`make bench-connections`).',
    '',
    'Targets:',
    '',
    ...settings.targets.map((t) => `- **${t}**: ${meta.targetNotes[t]}`),
    '',
    'How to read: each cell is the median over rounds, with (min–max) when there was more than one round.',
    'Ratios are taken against nginx in the same round and scenario, then the median of those is shown:',
    'req/s above 1 beats nginx; latency and CPU below 1 beat nginx. Proxy CPU is utime+stime of the',
    "proxy's whole process tree (nginx master + worker, HAProxy, the balancer's node process with all its threads) during the",
    'measured run, divided by the requests wrk completed. Errors are non-2xx responses plus socket errors',
    "(connect, read, write, and timeout: no response within wrk's default 2 s), warm-up included.",
    `wrk, the backends and the proxy share the same ${meta.machine.nproc} CPUs (and whatever else runs on the`,
    'machine: see the load average above), so absolute numbers are contended; compare within a table.',
    '',
  );
  out.push(...balancerOverview(settings, summary));

  for (const scenario of settings.scenarios) {
    const title = SCENARIOS[scenario].title.replace('{slowMs}', String(settings.slowMs));
    const slow = scenario === 'slow';
    out.push(`## ${title}`, '');
    if (slow) {
      out.push('"Slow share" is the share of all requests that backend 4 (the slow one) served; round-robin would give it 25 %,',
        'a least-connections picker much less. "Slow req/s" is the same in requests per second: least-connections keeps about',
        'as many requests in flight on the slow backend as on each fast one, so a proxy with lower total throughput shows a',
        'higher share for a similar slow req/s. Direct goes to backend 1 (a fast one).', '');
    }
    const head = ['target', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'errors', ...(slow ? ['slow share', 'slow req/s'] : []),
      'req/s ÷ nginx', 'p50 ÷ nginx', 'p99 ÷ nginx', 'CPU ÷ nginx', 'CPU ÷ plain'];
    out.push(`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
    for (const target of settings.targets) {
      const s = summary[scenario][target];
      const row = [`**${target}**`, fmt(s.rps, 0), fmt(s.p50Ms, 2), fmt(s.p99Ms, 2), fmt(s.cpuUsPerRequest, 1), String(s.errors),
        ...(slow ? [pct(s.slowShare), fmt(s.slowRps, 0)] : []),
        fmt(s.vsNginx.rps, 2), fmt(s.vsNginx.p50Ms, 2), fmt(s.vsNginx.p99Ms, 2), fmt(s.vsNginx.cpuUsPerRequest, 2), fmt(s.vsPlain.cpuUsPerRequest, 2)];
      out.push(`| ${row.join(' | ')} |`);
    }
    out.push('');
  }

  out.push('<details><summary>Every run</summary>', '');
  const head = ['round', 'scenario', 'target', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'CPU µs/req', 'errors (warm-up)', 'served per backend'];
  out.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
  for (const r of runs) {
    const cpu = r.cpuUsPerRequest === null ? '—' : r.cpuUsPerRequest.toFixed(1);
    out.push(`| ${[r.round, r.scenario, r.target, r.requests, r.rps.toFixed(0), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2),
      r.maxMs.toFixed(1), cpu, `${r.errorCount} (${r.warmupErrorCount})`, r.served.join(' / ')].join(' | ')} |`);
  }
  out.push('', '</details>', '');
  out.push(`Raw numbers: \`${meta.jsonPath}\` (gitignored).`, '');
  return out.join('\n');
}
