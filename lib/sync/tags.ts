/**
 * `GET /v2/<name>/tags/list`, following the `Link: <…>; rel="next"` pagination of the
 * distribution spec (distribution answers 100 per page by default, Docker Hub fewer).
 */
import { RegistryError, describeErrorBody } from '../registry/index.js';
import { readBody, repoScope, type RegistryHost } from './host.js';

/** Pages we follow before calling it a loop. */
const MAX_PAGES = 10_000;

/** The `rel="next"` target of a Link header, if any. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /\brel\s*=\s*"?next"?/i.test(m[2]!)) return m[1];
  }
  return undefined;
}

/** All tags of `path`, in the registry's order. */
export async function listTags(host: RegistryHost, path: string): Promise<string[]> {
  const what = `tags of ${host.domain}/${path}`;
  const tags: string[] = [];
  const scope = repoScope(path, 'pull');
  try {
    let url: string | undefined = await host.url(path, 'tags/list');
    for (let page = 0; url !== undefined; page++) {
      if (page >= MAX_PAGES) throw new RegistryError(`${what}: more than ${MAX_PAGES} pages`, 'HTTP');
      const res = await host.send('GET', url, { headers: { Accept: 'application/json' } }, scope);
      const body = await readBody(res.body, 16 * 1024 * 1024);
      if (res.status !== 200) throw await host.statusError(`list ${what}`, res.status, body);
      let doc: unknown;
      try {
        doc = JSON.parse(body.toString('utf8'));
      } catch {
        throw new RegistryError(`list ${what}: not JSON${describeErrorBody(body).text ? ` (${describeErrorBody(body).text})` : ''}`, 'HTTP');
      }
      const list = typeof doc === 'object' && doc !== null ? (doc as { tags?: unknown }).tags : undefined;
      if (list !== null && list !== undefined) {
        if (!Array.isArray(list) || list.some((t) => typeof t !== 'string')) throw new RegistryError(`list ${what}: 'tags' is not a list of strings`, 'HTTP');
        tags.push(...(list as string[]));
      }
      const next = nextLink(res.headers.link);
      url = next === undefined ? undefined : new URL(next, url).href;
    }
  } catch (err) {
    throw host.wrap(`list ${what}`, err);
  }
  return tags;
}
