import assert from 'node:assert/strict';
import { crc32, inflateSync } from 'node:zlib';
import { createImages, drawImage, IMAGE_HEIGHT, IMAGE_WIDTH } from '../src/images.js';
import { encodePng, PNG_SIGNATURE } from '../src/png.js';

interface Chunk {
  readonly type: string;
  readonly data: Buffer;
}

// An independent reader: walks the chunks and checks every CRC, as a decoder would.
function readChunks(png: Buffer): Chunk[] {
  assert.deepEqual(png.subarray(0, 8), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'PNG signature');
  const chunks: Chunk[] = [];
  let at = 8;
  while (at < png.length) {
    const length = png.readUInt32BE(at);
    const type = png.toString('latin1', at + 4, at + 8);
    const data = png.subarray(at + 8, at + 8 + length);
    assert.equal(png.readUInt32BE(at + 8 + length), crc32(png.subarray(at + 4, at + 8 + length)), `CRC of ${type}`);
    chunks.push({ type, data });
    at += 12 + length;
  }
  assert.equal(at, png.length, 'no trailing bytes');
  return chunks;
}

// Decodes an unfiltered 8-bit RGB PNG (what encodePng writes) back to pixels.
function decode(png: Buffer): { width: number; height: number; rgb: Buffer } {
  const chunks = readChunks(png);
  assert.deepEqual(chunks.map((c) => c.type), ['IHDR', 'IDAT', 'IEND']);
  const ihdr = chunks[0]?.data ?? Buffer.alloc(0);
  assert.equal(ihdr.length, 13);
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  assert.deepEqual([...ihdr.subarray(8)], [8, 2, 0, 0, 0], 'depth 8, RGB, deflate, no filter method, no interlace');
  const raw = inflateSync(chunks[1]?.data ?? Buffer.alloc(0));
  const stride = width * 3 + 1;
  assert.equal(raw.length, stride * height);
  const rgb = Buffer.alloc(width * 3 * height);
  for (let y = 0; y < height; y++) {
    assert.equal(raw[y * stride], 0, `filter byte of row ${y}`);
    raw.copy(rgb, y * width * 3, y * stride + 1, (y + 1) * stride);
  }
  return { width, height, rgb };
}

function pixel(rgb: Buffer, x: number, y: number): string {
  const i = (y * IMAGE_WIDTH + x) * 3;
  return [...rgb.subarray(i, i + 3)].map((v) => v.toString(16).padStart(2, '0')).join('');
}

describe('images', () => {
  const images = createImages();

  it('makes four valid 320x200 RGB PNGs', () => {
    assert.equal(images.length, 4);
    for (const png of images) {
      assert.ok(png.subarray(0, 8).equals(PNG_SIGNATURE));
      const { width, height } = decode(png);
      assert.deepEqual([width, height], [IMAGE_WIDTH, IMAGE_HEIGHT]);
    }
  });

  it('makes four distinct images, each its own colour with a white digit', () => {
    assert.equal(new Set(images.map((png) => png.toString('base64'))).size, 4, 'distinct bytes');
    const decoded = images.map((png) => decode(png).rgb);
    const corners = decoded.map((rgb) => pixel(rgb, 0, 0));
    assert.equal(new Set(corners).size, 4, `distinct background colours ${corners.join(' ')}`);
    for (const [i, rgb] of decoded.entries()) {
      let ink = 0;
      for (let at = 0; at < rgb.length; at += 3) if (rgb[at] === 255 && rgb[at + 1] === 255 && rgb[at + 2] === 255) ink++;
      // A digit is 8 to 17 dots of 20x20 pixels.
      assert.ok(ink >= 8 * 400 && ink <= 17 * 400, `image ${i + 1} has ${ink} white pixels`);
    }
  });

  it('is deterministic: drawing again gives the same pixels', () => {
    for (let id = 1; id <= 4; id++) assert.ok(decode(images[id - 1] ?? Buffer.alloc(0)).rgb.equals(drawImage(id)));
  });

  it('refuses ids it has no drawing for', () => {
    assert.throws(() => drawImage(0), RangeError);
    assert.throws(() => drawImage(5), RangeError);
  });
});

describe('encodePng', () => {
  it('round-trips arbitrary pixels', () => {
    const rgb = Uint8Array.from({ length: 3 * 5 * 2 }, (_, i) => (i * 37) % 256);
    const { width, height, rgb: back } = decode(encodePng(5, 2, rgb));
    assert.deepEqual([width, height], [5, 2]);
    assert.deepEqual([...back], [...rgb]);
  });

  it('rejects a pixel buffer of the wrong size', () => {
    assert.throws(() => encodePng(2, 2, new Uint8Array(11)), RangeError);
    assert.throws(() => encodePng(0, 2, new Uint8Array(0)), RangeError);
  });
});
