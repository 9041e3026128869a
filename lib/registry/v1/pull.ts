/**
 * pullV1: what nixpkgs' 2016 pull.sh did, into a directory whose NAR hash is the pin:
 *
 *   repositories        {"<name>": {"<tag>": "<id>"}} as jshon printed it (trailing newline)
 *   <id>/VERSION        "1.0\n" — pull.sh: `echo '1.0' > "$out/$layerId/VERSION"`
 *   <id>/json           detjson.py's output (no trailing newline: json.dump writes none)
 *   <id>/layer.tar      the layer bytes exactly as served (Docker Hub's may be gzip-compressed)
 *
 * for every id of the image's ancestry. (Source: pkgs/build-support/docker/pull.sh and
 * detjson.py in nixpkgs, 2016.) Unlike pull.sh it also falls back to the index host when the
 * index names no endpoint, validates every id, and never sends credentials to storage hosts.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repositoriesFile } from '../../image/repositories-file.js';
import type { FetchOptions } from '../../fetch/index.js';
import { fetchHttp } from './fetch-http.js';
import { readSmallBody, discardBody, headerValue, showUrl, type V1Http } from './http.js';
import { downloadLayer } from './layer.js';
import { checkV1ImageId, checkV1Name, checkV1Tag } from './names.js';
import { layerJson, parseAncestry, parseTagAnswer } from './protocol.js';
import { V1RegistryError, V1Session, type V1Credentials } from './session.js';

export const DOCKER_HUB_V1_INDEX = 'https://index.docker.io';

export type V1Progress =
  | { kind: 'resolved'; imageId: string; layers: readonly string[] }
  | { kind: 'layer-bytes'; id: string; received: number; total: number | undefined }
  | { kind: 'layer-done'; id: string; size: number }
  | { kind: 'layer-resume'; id: string; at: number; reason: string }
  | { kind: 'retry'; what: string; attempt: number; reason: string };

export interface PullV1Options {
  /** Repository name as the index knows it (`ubuntu`, `library/ubuntu`, `user/repo`). */
  name: string;
  /** Tag looked up (unless imageId is given) and written to `repositories`; default `latest`. */
  tag?: string;
  /** Pull this image id instead of resolving the tag (pull.nix's imageId). */
  imageId?: string;
  /** Index base URL; default https://index.docker.io. May carry a path prefix, no query. */
  indexUrl?: string;
  /** Registry base URL, overriding the index's X-Docker-Endpoints (pull.nix's registry). */
  registryUrl?: string;
  /** Directory to create (its parent must exist; it must not exist or be empty). */
  out: string;
  /** Basic credentials for the index. */
  credentials?: V1Credentials;
  /** Transport options (proxies, curlOpts, env, timeouts) for the default transport. */
  fetch?: FetchOptions;
  /** The HTTP exchange; default fetchHttp(opts.fetch) over lib/fetch. See http.ts. */
  http?: V1Http;
  /** Retries of a request after network errors or 408/429/5xx (default 3, as pull.sh's curl). */
  retries?: number;
  retryBaseMs?: number;
  /** Broken layer transfers resumed per layer (default 20). */
  maxResumes?: number;
  /** Layers fetched at once (default 3). */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (event: V1Progress) => void;
}

export interface PullV1Result {
  imageId: string;
  /** The ancestry: the image first, its base last (the directory holds one folder per entry). */
  layers: string[];
  dir: string;
  name: string;
  tag: string;
  /** Registry base the layers came from (`<scheme>://<endpoint>/v1`). */
  registryUrl: string;
}

const JSON_LIMIT = 16 << 20;

function indexBase(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`invalid index URL '${text}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`index URL '${text}' must be http or https`);
  if (u.search || u.hash || u.username || u.password) throw new Error(`index URL '${u.origin}${u.pathname}' must not carry a query, fragment or user info`);
  return u;
}

function joinPath(base: URL, path: string): URL {
  const u = new URL(base.href);
  u.pathname = base.pathname.replace(/\/+$/, '') + path;
  return u;
}

/** X-Docker-Endpoints: comma-separated hosts (host[:port]); the first one is used, with the index's scheme. */
function registryBase(endpoints: string | undefined, index: URL): URL {
  const first = endpoints?.split(',').map((s) => s.trim()).find((s) => s !== '');
  if (first === undefined) return joinPath(index, '/v1');
  let u: URL;
  try {
    u = /^https?:\/\//.test(first) ? new URL(first) : new URL(`${index.protocol}//${first}`);
  } catch {
    throw new V1RegistryError(`index ${index.origin}: X-Docker-Endpoints names an invalid host '${first.slice(0, 100)}'`, 'protocol');
  }
  if (u.pathname !== '/' || u.search || u.username) {
    throw new V1RegistryError(`index ${index.origin}: X-Docker-Endpoints entry '${first.slice(0, 100)}' is not a plain host`, 'protocol');
  }
  return new URL(`${u.origin}/v1`);
}

async function prepareOut(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create output directory '${dir}': ${(err as Error).message}`);
    if ((await readdir(dir)).length > 0) throw new Error(`output directory '${dir}' is not empty`);
  }
}

/** Runs `work` over `items`, `n` at a time; after a failure starts nothing new, lets running work finish, then throws. */
async function pool<T>(items: readonly T[], n: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        await work(items[i]!, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}

export async function pullV1(opts: PullV1Options): Promise<PullV1Result> {
  const name = checkV1Name(opts.name);
  const tag = checkV1Tag(opts.tag ?? 'latest');
  const givenId = opts.imageId === undefined ? undefined : checkV1ImageId(opts.imageId, 'imageId');
  const index = indexBase(opts.indexUrl ?? DOCKER_HUB_V1_INDEX);
  const report = opts.onProgress ?? (() => undefined);
  const session = new V1Session({
    http: opts.http ?? fetchHttp(opts.fetch),
    indexUrl: index,
    credentials: opts.credentials,
    retries: opts.retries ?? 3,
    retryBaseMs: opts.retryBaseMs ?? 1000,
    maxRedirects: 20,
    signal: opts.signal,
    onRetry: (what, attempt, reason) => report({ kind: 'retry', what, attempt, reason }),
  });
  await prepareOut(opts.out);

  // 1. The index: token and endpoints (pull.sh ignored the body; so do we).
  const imagesUrl = joinPath(index, `/v1/repositories/${name}/images`);
  const indexWhat = `index ${index.origin}: repository '${name}'`;
  const { res: idx } = await session.get(imagesUrl, indexWhat, { 'X-Docker-Token': 'true' });
  discardBody(idx.body);
  if (idx.status === 401 || idx.status === 403) {
    throw new V1RegistryError(`${indexWhat}: access refused (HTTP ${idx.status}): credentials ${opts.credentials ? 'invalid' : 'missing'}`, 'auth', idx.status);
  }
  if (idx.status === 404) throw new V1RegistryError(`${indexWhat}: not found (HTTP 404)`, 'not-found', 404);
  if (idx.status !== 200) throw new V1RegistryError(`${indexWhat}: HTTP ${idx.status} from ${showUrl(imagesUrl)}`, 'http', idx.status);
  const token = headerValue(idx, 'x-docker-token');
  // It goes into an Authorization header: printable ASCII only (and never into a message).
  if (token !== undefined && token !== '' && !/^[\x21-\x7e][\x20-\x7e]*$/.test(token)) {
    throw new V1RegistryError(`${indexWhat}: the index sent an unusable X-Docker-Token (not printable ASCII)`, 'protocol');
  }
  session.token = token === '' ? undefined : token;
  const registry = opts.registryUrl ? joinPath(new URL(opts.registryUrl), '/v1') : registryBase(headerValue(idx, 'x-docker-endpoints'), index);
  session.registryOrigin = registry.origin;

  const statusError = (what: string, status: number, url: URL, notFound: string): Error => {
    if (status === 401 || status === 403) {
      const why = session.token === undefined
        ? 'the index issued no X-Docker-Token (missing token)'
        : 'the registry rejected the X-Docker-Token from the index (invalid or expired token)';
      return new V1RegistryError(`${what}: access refused (HTTP ${status}): ${why}`, 'auth', status);
    }
    if (status === 404) return new V1RegistryError(`${what}: ${notFound} (HTTP 404 from ${showUrl(url)})`, 'not-found', 404);
    return new V1RegistryError(`${what}: HTTP ${status} from ${showUrl(url)}`, 'http', status);
  };

  const getSmall = async (path: string, what: string, notFound: string): Promise<Buffer> => {
    const url = joinPath(registry, path);
    for (let attempt = 0; ; attempt++) {
      const { res, url: at } = await session.get(url, what);
      if (res.status !== 200) {
        discardBody(res.body);
        throw statusError(what, res.status, at, notFound);
      }
      try {
        return await readSmallBody(res.body, JSON_LIMIT, what);
      } catch (err) {
        // A body cut off mid-way is worth another try; an oversized one is not.
        if (attempt >= (opts.retries ?? 3) || /larger than/.test((err as Error).message)) {
          throw new V1RegistryError(`${what}: ${(err as Error).message}`, 'network');
        }
      }
    }
  };

  // 2. Tag → image id.
  const imageId = givenId ?? parseTagAnswer(
    await getSmall(`/repositories/${name}/tags/${tag}`, `registry ${registry.origin}: tag '${tag}' of '${name}'`, 'unknown tag'),
    `registry ${registry.origin}: tag '${tag}' of '${name}'`,
  );

  // 3. Ancestry.
  const ancestryWhat = `registry ${registry.origin}: ancestry of ${imageId}`;
  const layers = parseAncestry(await getSmall(`/images/${imageId}/ancestry`, ancestryWhat, 'unknown image'), imageId, ancestryWhat);
  report({ kind: 'resolved', imageId, layers });

  await writeFile(join(opts.out, 'repositories'), repositoriesFile(name, tag, imageId));

  // 4. Each layer: VERSION, json (detjson form), layer.tar.
  await pool(layers, opts.concurrency ?? 3, async (id, i) => {
    const dir = join(opts.out, id);
    await mkdir(dir);
    await writeFile(join(dir, 'VERSION'), '1.0\n');
    const jsonWhat = `registry ${registry.origin}: layer ${id} json`;
    const raw = await getSmall(`/images/${id}/json`, jsonWhat, 'layer listed in the ancestry is missing (broken ancestry)');
    await writeFile(join(dir, 'json'), layerJson(raw, id, layers[i + 1], jsonWhat));
    const layerWhat = `registry ${registry.origin}: layer ${id}`;
    const { size } = await downloadLayer(session, joinPath(registry, `/images/${id}/layer`), join(dir, 'layer.tar'), layerWhat, {
      maxResumes: opts.maxResumes ?? 20,
      statusError: (status, url) => statusError(layerWhat, status, url, 'layer listed in the ancestry is missing (broken ancestry)'),
      onBytes: (received, total) => report({ kind: 'layer-bytes', id, received, total }),
      onResume: (at, reason) => report({ kind: 'layer-resume', id, at, reason }),
    });
    report({ kind: 'layer-done', id, size });
  });

  return { imageId, layers, dir: opts.out, name, tag, registryUrl: registry.href };
}
