import { IMAGE_COUNT } from './config.js';
import { encodePng } from './png.js';

/** Width in pixels of every generated image. */
export const IMAGE_WIDTH = 320;
/** Height in pixels of every generated image. */
export const IMAGE_HEIGHT = 200;

type Rgb = readonly [number, number, number];

// The project makes its own images rather than shipping binary files: one colour and one big
// digit per id, so a person (and a test) can tell at a glance which image came back.
const BACKGROUNDS: readonly Rgb[] = [
  [0xd9, 0x48, 0x5f], // 1: red
  [0x2f, 0x9e, 0x44], // 2: green
  [0x1c, 0x7e, 0xd6], // 3: blue
  [0xf0, 0x8c, 0x00], // 4: orange
];
const INK: Rgb = [0xff, 0xff, 0xff];

// 5x7 bitmap glyphs of the digits 1-4, '#' = ink.
const GLYPHS: readonly (readonly string[])[] = [
  ['..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  ['.###.', '#...#', '....#', '...#.', '..#..', '.#...', '#####'],
  ['#####', '...#.', '..#..', '...#.', '....#', '#...#', '.###.'],
  ['...#.', '..##.', '.#.#.', '#..#.', '#####', '...#.', '...#.'],
];
const CELL = 20; // pixels per glyph dot: the digit is 100x140, centred
const SHADOW = 6; // offset of the darker copy under the digit

function shade(colour: Rgb, factor: number): Rgb {
  return [Math.round(colour[0] * factor), Math.round(colour[1] * factor), Math.round(colour[2] * factor)];
}

/** Draws image `id` (1-4) as raw RGB pixels: a vertical gradient of its colour and its digit. */
export function drawImage(id: number): Uint8Array {
  const background = BACKGROUNDS[id - 1];
  const glyph = GLYPHS[id - 1];
  if (background === undefined || glyph === undefined) throw new RangeError(`no image ${id}`);
  const pixels = new Uint8Array(IMAGE_WIDTH * IMAGE_HEIGHT * 3);
  const put = (x: number, y: number, colour: Rgb): void => {
    pixels.set(colour, (y * IMAGE_WIDTH + x) * 3);
  };
  for (let y = 0; y < IMAGE_HEIGHT; y++) {
    const row = shade(background, 1 - (0.35 * y) / IMAGE_HEIGHT);
    for (let x = 0; x < IMAGE_WIDTH; x++) put(x, y, row);
  }
  const left = Math.floor((IMAGE_WIDTH - 5 * CELL) / 2);
  const top = Math.floor((IMAGE_HEIGHT - 7 * CELL) / 2);
  const shadow = shade(background, 0.45);
  for (const [offset, colour] of [[SHADOW, shadow], [0, INK]] as const) {
    glyph.forEach((line, gy) => {
      for (let gx = 0; gx < line.length; gx++) {
        if (line[gx] !== '#') continue;
        for (let y = 0; y < CELL; y++) {
          for (let x = 0; x < CELL; x++) put(left + gx * CELL + x + offset, top + gy * CELL + y + offset, colour);
        }
      }
    });
  }
  return pixels;
}

/** Encodes the images for ids 1..4 once; index 0 holds id 1. Done at start, then served from memory. */
export function createImages(): readonly Buffer[] {
  return Object.freeze(
    Array.from({ length: IMAGE_COUNT }, (_, i) => encodePng(IMAGE_WIDTH, IMAGE_HEIGHT, drawImage(i + 1))),
  );
}
