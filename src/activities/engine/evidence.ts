/**
 * Evidence preservation: files written once into `<evidence dir>/<incident id>/` with a sha256
 * manifest in `sha256sum -c` format, so anyone can later prove that what was exported is unchanged.
 * Evidence is never overwritten: a second export for the same incident checks the files it finds.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ActivityDeps } from './deps';
import { ErrorType, permanent } from './errors';

export const MANIFEST = 'manifest.sha256';

export interface EvidenceFile {
  name: string;
  sha256: string;
  bytes: number;
}

export interface EvidenceBundle {
  dir: string;
  manifest: string;
  files: EvidenceFile[];
  /** True if the evidence was already there (an earlier attempt wrote it) and still matches. */
  reused: boolean;
}

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');

/** The incident's evidence directory; the id becomes a path, so only plain characters are accepted. */
export function incidentEvidenceDir(deps: ActivityDeps, incidentId: string): string {
  if (!/^[\w.-]{1,200}$/.test(incidentId) || incidentId.includes('..')) {
    throw permanent(ErrorType.BadInput, `incident id "${incidentId.slice(0, 80)}" cannot name a directory`);
  }
  return path.resolve(deps.config.evidence.dir, incidentId);
}

function parseManifest(text: string): { name: string; sha256: string }[] {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
      if (!m) throw new Error(`malformed manifest line: ${line.slice(0, 80)}`);
      return { sha256: m[1] as string, name: m[2] as string };
    });
}

/** Re-hashes every file the manifest names. */
export async function checkEvidence(dir: string): Promise<{ ok: boolean; detail: string; files: EvidenceFile[] }> {
  const manifestPath = path.join(dir, MANIFEST);
  if (!existsSync(manifestPath)) return { ok: false, detail: `no ${MANIFEST} in ${dir}`, files: [] };
  const files: EvidenceFile[] = [];
  const bad: string[] = [];
  for (const entry of parseManifest(await readFile(manifestPath, 'utf8'))) {
    const data = existsSync(path.join(dir, entry.name)) ? await readFile(path.join(dir, entry.name)) : undefined;
    const actual = data ? sha256(data) : 'missing';
    if (actual !== entry.sha256) bad.push(`${entry.name} (${actual === 'missing' ? 'missing' : 'changed'})`);
    files.push({ name: entry.name, sha256: entry.sha256, bytes: data?.length ?? 0 });
  }
  const detail = bad.length ? `evidence altered: ${bad.join(', ')}` : `${files.length} files match ${MANIFEST}`;
  return { ok: bad.length === 0, detail, files };
}

/**
 * Writes the files, then the manifest last: a crash before the manifest leaves nothing that counts
 * as evidence, and the retry writes it all again. Once a manifest exists it is only checked.
 */
export async function preserveEvidence(dir: string, files: { name: string; content: string }[]): Promise<EvidenceBundle> {
  const manifestPath = path.join(dir, MANIFEST);
  if (existsSync(manifestPath)) {
    const check = await checkEvidence(dir);
    if (!check.ok) throw permanent(ErrorType.Refused, `${check.detail}; refusing to overwrite evidence`);
    return { dir, manifest: manifestPath, files: check.files, reused: true };
  }
  await mkdir(dir, { recursive: true });
  const written: EvidenceFile[] = [];
  for (const f of files) {
    if (!/^[\w.-]+$/.test(f.name)) throw permanent(ErrorType.BadInput, `bad evidence file name ${f.name}`);
    await writeFile(path.join(dir, f.name), f.content);
    written.push({ name: f.name, sha256: sha256(f.content), bytes: Buffer.byteLength(f.content) });
  }
  await writeFile(manifestPath, written.map((f) => `${f.sha256}  ${f.name}\n`).join(''));
  return { dir, manifest: manifestPath, files: written, reused: false };
}
