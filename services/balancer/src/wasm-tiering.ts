/**
 * Keeps WebAssembly on V8's baseline compiler, Liftoff: the only WebAssembly here is undici's
 * HTTP/1.1 response parser (llhttp), which V8 would otherwise recompile with TurboFan once it is
 * hot. Imported by main.ts before the first upstream connection.
 *
 * Why: TurboFan compiling llhttp's state machine took 22 MB of working memory, malloc'ed on one
 * of V8's worker threads about a second after the first health probes, and glibc kept 10 MB of it
 * resident in that thread's arena for the process's life: a tenth of what 10,000 idle keep-alive
 * clients may take (bench/CONNECTIONS.md). A response head is a few hundred bytes, so the parser
 * is a small part of a request's CPU either way: in a same-run comparison the balancer cost the
 * same CPU per request within noise (bench/PROFILE.md).
 *
 * How: V8 reads these flags when it decides to tier a function up, so setting them at run time
 * works. `--liftoff-only` would say it, but it is read once, when the first module is compiled;
 * `--no-wasm-dynamic-tiering` alone would compile every function with TurboFan up front, and
 * `--no-wasm-tier-up` forbids that too.
 */
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-wasm-tier-up');
setFlagsFromString('--no-wasm-dynamic-tiering');
