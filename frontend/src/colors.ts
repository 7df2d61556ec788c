/**
 * One colour per upstream, the same in the rows, the charts, the decision log and the burst tally.
 * Colours are handed out in order of first appearance and freed when an upstream leaves, so the
 * first ten upstreams never share a colour and a returning upstream does not repaint the others.
 */

/** Readable on both the light and the dark background; red is left out, it means "error" here. */
export const PALETTE: readonly string[] = [
  '#3b82f6', // blue
  '#f59e0b', // amber
  '#10b981', // emerald
  '#a855f7', // purple
  '#06b6d4', // cyan
  '#ec4899', // pink
  '#84cc16', // lime
  '#f97316', // orange
  '#6366f1', // indigo
  '#14b8a6', // teal
];

/** What {@link createColorMap} returns. */
export interface ColorMap {
  /** The colour of `id`, assigning one if it has none. */
  get(id: string): string;
  /** Keeps only the colours of `ids`, freeing the others for newcomers. */
  retain(ids: Iterable<string>): void;
}

/** Creates an empty assignment. */
export function createColorMap(palette: readonly string[] = PALETTE): ColorMap {
  const slots = new Map<string, number>();
  return {
    get(id) {
      let slot = slots.get(id);
      if (slot === undefined) {
        const used = new Set(slots.values());
        slot = 0;
        while (used.has(slot)) slot++;
        slots.set(id, slot);
      }
      return palette[slot % palette.length] ?? '#888888';
    },
    retain(ids) {
      const keep = new Set(ids);
      for (const id of [...slots.keys()]) if (!keep.has(id)) slots.delete(id);
    },
  };
}
