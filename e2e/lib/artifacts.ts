import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** e2e/artifacts: logs, figures and per-second tables of the last run (ignored by git). */
export const ARTIFACTS = resolve(dirname(fileURLToPath(import.meta.url)), '../artifacts');

/** Writes e2e/artifacts/<name>, creating the folder first: a fresh clone has none. */
export async function saveArtifact(name: string, content: string): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  await writeFile(join(ARTIFACTS, name), content);
}
