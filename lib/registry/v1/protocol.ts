/** The v1 answers a pull reads, checked: tag → id, ancestry, layer json. */
import { PyInt, dumpPyJson, makeDeterministic, parsePyJson } from '../../image/detjson.js';
import { isV1ImageId } from './names.js';
import { V1RegistryError } from './session.js';
import { printable } from '../../text/index.js';

function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new V1RegistryError(`${what}: answer is not JSON`, 'protocol');
  }
}

/** `GET /v1/repositories/<name>/tags/<tag>` answers a JSON string; pull.sh also took it unquoted. */
export function parseTagAnswer(body: Buffer, what: string): string {
  const text = body.toString('utf8').trim();
  const id = /^[0-9a-f]{64}$/.test(text) ? text : parseJson(body, what);
  if (!isV1ImageId(id)) {
    throw new V1RegistryError(`${what}: answer is not an image id (expected a JSON string of 64 lower-case hex digits)`, 'protocol');
  }
  return id;
}

/**
 * `GET /v1/images/<id>/ancestry`: the image itself first, then its parent, down to the base.
 * Every entry must be a distinct image id (a repeat would make the chain a cycle).
 */
export function parseAncestry(body: Buffer, imageId: string, what: string): string[] {
  const list = parseJson(body, what);
  if (!Array.isArray(list)) throw new V1RegistryError(`${what}: broken ancestry: not a JSON list`, 'protocol');
  if (list.length === 0) throw new V1RegistryError(`${what}: broken ancestry: empty list (the image itself is missing)`, 'protocol');
  const seen = new Set<string>();
  list.forEach((id: unknown, n) => {
    if (!isV1ImageId(id)) throw new V1RegistryError(`${what}: broken ancestry: entry ${n} is not an image id`, 'protocol');
    if (seen.has(id)) throw new V1RegistryError(`${what}: broken ancestry: ${id} appears twice (a cycle)`, 'protocol');
    seen.add(id);
  });
  if (list[0] !== imageId) {
    throw new V1RegistryError(`${what}: broken ancestry: starts with ${String(list[0])}, not the image ${imageId}`, 'protocol');
  }
  return list as string[];
}

/**
 * A layer's `json`: must be an object whose `id` (when present) is the layer's id and whose
 * `parent` (when present and non-empty) is the next entry of the ancestry. Returns the
 * detjson.py form of it.
 */
export function layerJson(body: Buffer, id: string, parent: string | undefined, what: string): string {
  let tree;
  try {
    tree = parsePyJson(body, what);
  } catch (err) {
    throw new V1RegistryError((err as Error).message, 'protocol');
  }
  if (!(tree instanceof Map)) throw new V1RegistryError(`${what}: layer json is not a JSON object`, 'protocol');
  const ownId = tree.get('id');
  if (ownId !== undefined && ownId !== id) {
    throw new V1RegistryError(`${what}: layer json has id ${showScalar(ownId)}, expected ${id}`, 'protocol');
  }
  const p = tree.get('parent');
  if (p !== undefined && p !== null && p !== '' && p !== parent) {
    throw new V1RegistryError(`${what}: broken ancestry: layer json names parent ${showScalar(p)}, ancestry says ${parent ?? 'none'}`, 'protocol');
  }
  try {
    makeDeterministic(tree, what);
  } catch (err) {
    throw new V1RegistryError((err as Error).message, 'protocol');
  }
  return dumpPyJson(tree);
}

function showScalar(v: unknown): string {
  if (typeof v === 'string') return `'${printable(v, 80)}'`;
  if (v instanceof PyInt) return v.text;
  return typeof v === 'object' ? 'a non-string' : String(v);
}
