// Builds the page into dist/: index.html plus content-hashed assets/main-<hash>.{js,css}, so the
// servers (nginx, the launcher) can cache assets forever and index.html never.
// esbuild does not typecheck; `npm run typecheck` (tsc -b) covers src/.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const watch = process.argv.includes('--watch');

// Old hashed files would otherwise pile up in dist/assets.
await rm(dist, { recursive: true, force: true });
await mkdir(join(dist, 'assets'), { recursive: true });

/** @type {import('esbuild').BuildOptions} */
const options = {
  absWorkingDir: here,
  entryPoints: { main: 'src/main.ts' },
  bundle: true,
  format: 'esm',
  minify: true,
  sourcemap: true,
  target: ['es2022', 'chrome120', 'firefox120', 'safari16'],
  outdir: join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  logLevel: 'warning',
};

/** Writes dist/index.html pointing at the hashed outputs of one build. */
async function writeHtml(metafile) {
  let js;
  let css;
  for (const [out, info] of Object.entries(metafile.outputs)) {
    if (info.entryPoint && out.endsWith('.js')) {
      js = basename(out);
      css = info.cssBundle ? basename(info.cssBundle) : undefined;
    }
  }
  if (!js || !css) throw new Error('build produced no main js/css bundle');
  const template = await readFile(join(here, 'index.html'), 'utf8');
  const html = template.replace('%MAIN_JS%', `/assets/${js}`).replace('%MAIN_CSS%', `/assets/${css}`);
  if (html.includes('%MAIN_')) throw new Error('index.html has an unknown placeholder');
  await writeFile(join(dist, 'index.html'), html);
  return { js, css };
}

if (watch) {
  // Development: rebuild on change; index.html is rewritten with the new hashes each time.
  const ctx = await esbuild.context({
    ...options,
    plugins: [
      {
        name: 'html',
        setup(build) {
          build.onEnd(async (result) => {
            if (result.metafile) {
              const { js } = await writeHtml(result.metafile);
              console.log(`frontend rebuilt: ${js}`);
            }
          });
        },
      },
    ],
  });
  await ctx.watch();
} else {
  const result = await esbuild.build(options);
  const { js, css } = await writeHtml(result.metafile);
  console.log(`frontend: dist/index.html, dist/assets/${js}, dist/assets/${css}`);
}
