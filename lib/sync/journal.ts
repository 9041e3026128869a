/**
 * Sessions of chunked uploads, kept on disk so that a sync killed in the middle of a big blob
 * resumes it: the next run asks the session what arrived (`GET` → `Range`) and sends only the
 * rest. One small file per destination blob holding the session URL (a capability the registry
 * signed, no credentials), written atomically with mode 0600.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export class UploadJournal {
  constructor(private readonly dir: string) {}

  private file(registry: string, path: string, digest: string): string {
    return join(this.dir, createHash('sha256').update(`${registry}/${path}@${digest}`).digest('hex'));
  }

  /** The saved session URL, if there is a readable one. */
  async get(registry: string, path: string, digest: string): Promise<URL | undefined> {
    try {
      return new URL((await readFile(this.file(registry, path, digest), 'utf8')).trim());
    } catch {
      return undefined; // absent or unreadable: start a new session
    }
  }

  async set(registry: string, path: string, digest: string, url: URL): Promise<void> {
    const dest = this.file(registry, path, digest);
    const tmp = `${dest}.${randomBytes(6).toString('hex')}.tmp`;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFile(tmp, `${url.href}\n`, { mode: 0o600 });
    await rename(tmp, dest);
  }

  async drop(registry: string, path: string, digest: string): Promise<void> {
    await rm(this.file(registry, path, digest), { force: true });
  }
}
