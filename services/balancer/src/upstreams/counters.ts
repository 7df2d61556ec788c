/**
 * The live counters of every upstream, in SharedArrayBuffers so that every data-path thread sees
 * and updates the same numbers (least-connections stays exact across threads: there are no
 * per-thread guesses of what the others have in flight).
 *
 * - In-flight and long-lived counts are shared cells changed with Atomics by whoever proxies.
 * - Peer in-flight cells hold what the other balancers report (the sum over the live ones), written
 *   by the thread that owns the peers (src/peers/peers.ts) and read by every picker.
 * - Requests and errors are statistics: each thread ("writer") has a row of its own, written
 *   without atomics (one writer per cell), and readers sum the rows. Float64 stays exact up to
 *   2^53, where an Int32 cell would wrap after 2^31 requests (days at 10k req/s).
 * - Slots (one per upstream) are handed out by the owner of the registry only.
 */

/** Control cells, shared by all threads. */
const RELEASES = 0; // bumped on every release: threads with queued requests wait on it
const QUEUE_WAITERS = 1; // threads waiting on RELEASES, so a release notifies only when someone waits
const TURN = 2; // the picker's tie-break rotation, one sequence for every thread
const CONTROL_CELLS = 3;

/** Statistics per slot, in each writer's row. */
const REQUESTS = 0;
const ERRORS = 1;
const STATS_PER_SLOT = 2;
/** Totals in each writer's row, after the slots: every client request, those answered 5xx. */
const TOTAL_REQUESTS = 0;
const TOTAL_ERRORS = 1;

/** What a thread needs to attach to the same counters (structured-cloneable). */
export interface CounterBuffers {
  readonly capacity: number;
  readonly writers: number;
  readonly control: SharedArrayBuffer;
  readonly inFlight: SharedArrayBuffer;
  readonly longLived: SharedArrayBuffer;
  readonly peerInFlight: SharedArrayBuffer;
  readonly stats: SharedArrayBuffer;
}

export class CounterTable {
  readonly buffers: CounterBuffers;
  /** This thread's row in the statistics. */
  readonly writer: number;
  private readonly control: Int32Array;
  private readonly inFlightCells: Int32Array;
  private readonly longLivedCells: Int32Array;
  private readonly peerInFlightCells: Int32Array;
  private readonly stats: Float64Array;
  private readonly rowLength: number;
  private readonly row: number;
  private readonly free: number[] = [];
  private nextSlot = 0;

  /** New counters for `capacity` upstreams and `writers` threads (1 = everything on one thread). */
  static create(capacity = 1024, writers = 1): CounterTable {
    const rowLength = capacity * STATS_PER_SLOT + 2;
    return new CounterTable(
      {
        capacity,
        writers,
        control: new SharedArrayBuffer(CONTROL_CELLS * 4),
        inFlight: new SharedArrayBuffer(capacity * 4),
        longLived: new SharedArrayBuffer(capacity * 4),
        peerInFlight: new SharedArrayBuffer(capacity * 4),
        stats: new SharedArrayBuffer(writers * rowLength * 8),
      },
      0,
    );
  }

  /** Attaches to counters made by another thread; `writer` is this thread's row (0 is the creator's). */
  constructor(buffers: CounterBuffers, writer: number) {
    if (writer < 0 || writer >= buffers.writers) throw new RangeError(`writer ${writer} outside 0..${buffers.writers - 1}`);
    this.buffers = buffers;
    this.writer = writer;
    this.control = new Int32Array(buffers.control);
    this.inFlightCells = new Int32Array(buffers.inFlight);
    this.longLivedCells = new Int32Array(buffers.longLived);
    this.peerInFlightCells = new Int32Array(buffers.peerInFlight);
    this.stats = new Float64Array(buffers.stats);
    this.rowLength = buffers.capacity * STATS_PER_SLOT + 2;
    this.row = writer * this.rowLength;
  }

  /** A free slot with every counter at 0 (registry owner only). Throws when all are taken. */
  allocate(): number {
    const slot = this.free.pop() ?? (this.nextSlot < this.buffers.capacity ? this.nextSlot++ : -1);
    if (slot === -1) throw new RangeError(`more than ${this.buffers.capacity} upstreams at once`);
    Atomics.store(this.inFlightCells, slot, 0);
    Atomics.store(this.longLivedCells, slot, 0);
    Atomics.store(this.peerInFlightCells, slot, 0);
    for (let w = 0; w < this.buffers.writers; w++) {
      const at = w * this.rowLength + slot * STATS_PER_SLOT;
      this.stats[at + REQUESTS] = 0;
      this.stats[at + ERRORS] = 0;
    }
    return slot;
  }

  /** Returns a slot nobody uses any more (no thread can still release on it). */
  release(slot: number): void {
    this.free.push(slot);
  }

  inFlight(slot: number): number {
    return Atomics.load(this.inFlightCells, slot);
  }

  /** Adds one in-flight request, unless the slot already has `max` (0 = no cap). */
  tryAcquire(slot: number, max: number): boolean {
    if (max === 0) {
      Atomics.add(this.inFlightCells, slot, 1);
      return true;
    }
    // A compare-and-swap loop: another thread may take the last place between our read and write.
    for (;;) {
      const seen = Atomics.load(this.inFlightCells, slot);
      if (seen >= max) return false;
      if (Atomics.compareExchange(this.inFlightCells, slot, seen, seen + 1) === seen) return true;
    }
  }

  /** Ends one in-flight request; returns the count left. Wakes threads whose requests wait in a queue. */
  releaseOne(slot: number): number {
    const left = Atomics.sub(this.inFlightCells, slot, 1) - 1;
    Atomics.add(this.control, RELEASES, 1);
    if (Atomics.load(this.control, QUEUE_WAITERS) > 0) Atomics.notify(this.control, RELEASES);
    return left;
  }

  /**
   * The next turn of the tie-break rotation. Shared so that sequential requests rotate over the
   * upstreams exactly, whichever thread takes them (it wraps to negative after 2^31: the picker
   * takes its absolute value).
   */
  nextTurn(): number {
    return Atomics.add(this.control, TURN, 1);
  }

  /** In flight on the slot's upstream through the other balancers, as their latest reports say. */
  peerInFlight(slot: number): number {
    return Atomics.load(this.peerInFlightCells, slot);
  }

  /** Sets the peers' sum for a slot (the owner of the peers only: one writer). */
  setPeerInFlight(slot: number, n: number): void {
    Atomics.store(this.peerInFlightCells, slot, n);
  }

  longLived(slot: number): number {
    return Atomics.load(this.longLivedCells, slot);
  }

  addLongLived(slot: number, delta: 1 | -1): void {
    Atomics.add(this.longLivedCells, slot, delta);
  }

  countUpstreamRequest(slot: number): void {
    const at = this.row + slot * STATS_PER_SLOT + REQUESTS;
    this.stats[at] = (this.stats[at] ?? 0) + 1;
  }

  countUpstreamError(slot: number): void {
    const at = this.row + slot * STATS_PER_SLOT + ERRORS;
    this.stats[at] = (this.stats[at] ?? 0) + 1;
  }

  /** Counts one finished client request in the totals (5xx also as an error). */
  countRequest(status: number): void {
    const at = this.row + this.buffers.capacity * STATS_PER_SLOT;
    this.stats[at + TOTAL_REQUESTS] = (this.stats[at + TOTAL_REQUESTS] ?? 0) + 1;
    if (status >= 500) this.stats[at + TOTAL_ERRORS] = (this.stats[at + TOTAL_ERRORS] ?? 0) + 1;
  }

  upstreamRequests(slot: number): number {
    return this.sum(slot * STATS_PER_SLOT + REQUESTS);
  }

  upstreamErrors(slot: number): number {
    return this.sum(slot * STATS_PER_SLOT + ERRORS);
  }

  totals(): { requests: number; errors: number } {
    const base = this.buffers.capacity * STATS_PER_SLOT;
    return { requests: this.sum(base + TOTAL_REQUESTS), errors: this.sum(base + TOTAL_ERRORS) };
  }

  /**
   * Resolves on the next release by any thread (or after `timeoutMs`), without blocking this
   * thread's event loop: how a queued request hears that another thread freed a place.
   */
  async nextRelease(timeoutMs: number): Promise<void> {
    const seen = Atomics.load(this.control, RELEASES);
    Atomics.add(this.control, QUEUE_WAITERS, 1);
    try {
      const wait = Atomics.waitAsync(this.control, RELEASES, seen, timeoutMs);
      if (wait.async) await wait.value;
    } finally {
      Atomics.sub(this.control, QUEUE_WAITERS, 1);
    }
  }

  private sum(offset: number): number {
    let n = 0;
    for (let w = 0; w < this.buffers.writers; w++) n += this.stats[w * this.rowLength + offset] ?? 0;
    return n;
  }
}
