/**
 * Keeps V8's young generation at its initial size (a few MB) instead of letting it grow to 32 MB
 * per semi-space (64 MB committed) under a burst of allocation. Imported first by main.ts, before
 * the other modules allocate, so it is in force from the start.
 *
 * Why: the young generation grows in one burst (10,000 clients connecting, a spike of requests)
 * and its pages stay resident afterwards, which on Node 24 was the largest single part of the
 * balancer's peak RSS with 10,000 idle keep-alive clients (bench/CONNECTIONS.md); a proxy's
 * per-request garbage is short-lived, so small scavenges cost little (bench/RESULTS.md).
 * `--max-semi-space-size` would say the same, but only on the command line (V8 reads it once,
 * when the heap is set up); the growth factor is read at every growth, so it works from here.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--semi-space-growth-factor=1');
