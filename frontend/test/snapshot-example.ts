/**
 * The Snapshot of docs/contracts.md as the view reads it. The balancer's tests check it against a
 * snapshot the balancer really takes (services/balancer/test/snapshot-contract.spec.ts), so a field
 * renamed or dropped on either side fails there instead of going unnoticed here.
 */
export const example = {
  time: 1764081000000,
  instance: '3f2a9c1b7d4e',
  tieBreak: 'rotation',
  policy: 'least-connections',
  explain: false,
  panic: false,
  totals: { requests: 120, inFlight: 3, errors: 1 },
  imbalance: 1.33,
  upstreams: [
    { id: '127.0.0.1:8002', weight: 1, inFlight: 2, inFlightCluster: 5, requests: 60, errors: 0, state: 'up', available: true, source: 'static', longLived: 1, maxInFlight: 0 },
  ],
  decisions: [{ time: 1764081000000, chosen: '127.0.0.1:8002', reason: 'tie-rotation' }],
  peers: [{ address: '172.18.0.7:9001', ageMs: 12, state: 'live' }],
};
