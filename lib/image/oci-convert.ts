import { createHash } from 'node:crypto';
import { goJsonString, parseJsonTree, type JsonTree } from './canonical-json.js';
import { printable } from '../text/index.js';

/**
 * Docker schema2 → OCI conversion exactly as `skopeo copy ... oci:` does it (containers/image
 * v5 with image-spec 1.1.0-rc2, Go 1.19): the config is decoded by Go's json.Unmarshal into
 * image-spec's Image struct and marshalled again (Docker-only fields dropped, struct field order,
 * `created` re-formatted as RFC3339Nano), the manifest is rebuilt around the new config, and a
 * manifest list becomes an index whose entries point at the converted manifests.
 */

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';

const LAYER_TYPES: Record<string, string> = {
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.diff.tar': 'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.docker.image.rootfs.foreign.diff.tar': 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
};

// ------------------------------------------------------------ Go struct model

interface GoStruct { k: 'struct'; name: string; fields: GoField[] }
type GoType =
  | { k: 'string' } | { k: 'bool' } | { k: 'time' } | { k: 'strings' } | { k: 'stringMap' } | { k: 'set' }
  | GoStruct | { k: 'structs'; of: GoStruct };
interface GoField { key: string; type: GoType; omitempty: boolean }

type StructVal = Map<string, GoVal>;
type GoVal = string | boolean | null | string[] | Map<string, string> | Set<string> | StructVal | StructVal[];

const S = { k: 'string' } as const;
const f = (key: string, type: GoType, omitempty = true): GoField => ({ key, type, omitempty });

const HISTORY: GoStruct = { k: 'struct', name: 'History', fields: [
  f('created', { k: 'time' }), f('created_by', S), f('author', S), f('comment', S), f('empty_layer', { k: 'bool' }),
] };

const IMAGE: GoType = { k: 'struct', name: 'Image', fields: [
  f('created', { k: 'time' }),
  f('author', S),
  f('architecture', S, false),
  f('variant', S),
  f('os', S, false),
  f('os.version', S),
  f('os.features', { k: 'strings' }),
  f('config', { k: 'struct', name: 'ImageConfig', fields: [
    f('User', S), f('ExposedPorts', { k: 'set' }), f('Env', { k: 'strings' }), f('Entrypoint', { k: 'strings' }),
    f('Cmd', { k: 'strings' }), f('Volumes', { k: 'set' }), f('WorkingDir', S), f('Labels', { k: 'stringMap' }),
    f('StopSignal', S), f('ArgsEscaped', { k: 'bool' }),
  ] }),
  f('rootfs', { k: 'struct', name: 'RootFS', fields: [f('type', S, false), f('diff_ids', { k: 'strings' }, false)] }, false),
  f('history', { k: 'structs', of: HISTORY }),
] };

function zero(t: GoType): GoVal {
  switch (t.k) {
    case 'string': return '';
    case 'bool': return false;
    case 'struct': return new Map(t.fields.map((fd) => [fd.key, zero(fd.type)]));
    default: return null; // nil pointer, slice or map
  }
}

// Go's case-insensitive field match (encoding/json foldFunc): ASCII letters fold; for names with
// k or s, the Kelvin sign and long s fold too.
function foldEquals(field: string, key: string): boolean {
  const k = /[ksKS]/.test(field) ? key.replace(/\u017f/g, 's').replace(/\u212a/g, 'k') : key;
  if (k.length !== field.length) return false;
  for (let i = 0; i < k.length; i++) {
    const a = field[i]!;
    const b = k[i]!;
    if (a !== b && !(/[a-zA-Z]/.test(a) && /[a-zA-Z]/.test(b) && a.toLowerCase() === b.toLowerCase())) return false;
  }
  return true;
}

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Go 1.19 time.Time JSON round trip: Parse(`"`+RFC3339+`"`, raw token) then Format(RFC3339Nano).
 * The raw token matters: Go parses the quoted bytes, so an escape sequence is an error.
 */
export function goRfc3339Nano(raw: string): string {
  const m = /^"(\d{4})-(\d{2})-(\d{2})T(\d{1,2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))"$/.exec(raw);
  if (!m) throw new Error(`parsing time ${printable(raw)} as RFC3339 failed`);
  const [, y, mo, d, h, mi, s, frac, , sign, zh, zm] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12) throw new Error(`parsing time ${raw}: month out of range`);
  if (day < 1 || day > DAYS[month - 1]! + (month === 2 && leap ? 1 : 0)) throw new Error(`parsing time ${raw}: day out of range`);
  if (Number(h) > 23) throw new Error(`parsing time ${raw}: hour out of range`);
  if (Number(mi) > 59) throw new Error(`parsing time ${raw}: minute out of range`);
  if (Number(s) > 59) throw new Error(`parsing time ${raw}: second out of range`);
  const nanos = (frac ?? '').slice(0, 9).padEnd(9, '0').replace(/0+$/, '');
  const offset = sign ? Number(zh) * 60 + Number(zm) : 0;
  const zone = offset === 0 ? 'Z' : `${sign}${zh}:${zm}`;
  return `${y}-${mo}-${d}T${h!.padStart(2, '0')}:${mi}:${s}${nanos ? `.${nanos}` : ''}${zone}`;
}

function typeName(n: JsonTree): string {
  return { null: 'null', bool: 'bool', num: 'number', str: 'string', arr: 'array', obj: 'object' }[n.t];
}

// json.Unmarshal of `n` into a Go value currently holding `cur` (Go merges objects into existing
// structs and maps, decodes arrays element-wise over the old slice, and treats null per kind).
function decode(t: GoType, n: JsonTree, cur: GoVal, where: string): GoVal {
  const mismatch = () => new Error(`json: cannot unmarshal ${typeName(n)} into Go value ${where}`);
  switch (t.k) {
    case 'string':
      if (n.t === 'null') return cur;
      if (n.t !== 'str') throw mismatch();
      return n.v;
    case 'bool':
      if (n.t === 'null') return cur;
      if (n.t !== 'bool') throw mismatch();
      return n.v;
    case 'time':
      if (n.t === 'null') return null;
      // Go hands time.Time the raw token, so anything but a plain string fails to parse.
      return goRfc3339Nano(n.t === 'str' ? n.raw : '');
    case 'strings': {
      if (n.t === 'null') return null;
      if (n.t !== 'arr') throw mismatch();
      const old = Array.isArray(cur) ? (cur as string[]) : [];
      return n.v.map((e, i) => decode(S, e, old[i] ?? '', `${where}[${i}]`) as string);
    }
    case 'stringMap':
    case 'set': {
      if (n.t === 'null') return null;
      if (n.t !== 'obj') throw mismatch();
      if (t.k === 'set') {
        const set = cur instanceof Set ? cur : new Set<string>();
        for (const [k, v] of n.v) {
          if (v.t !== 'obj' && v.t !== 'null') throw new Error(`json: cannot unmarshal ${typeName(v)} into Go value ${where}[${k}] of type struct {}`);
          set.add(k);
        }
        return set;
      }
      const map = cur instanceof Map ? (cur as Map<string, string>) : new Map<string, string>();
      for (const [k, v] of n.v) map.set(k, decode(S, v, '', `${where}[${k}]`) as string);
      return map;
    }
    case 'struct': {
      if (n.t === 'null') return cur;
      if (n.t !== 'obj') throw mismatch();
      const st = cur as StructVal;
      for (const [k, v] of n.v) {
        const field = t.fields.find((fd) => fd.key === k) ?? t.fields.find((fd) => foldEquals(fd.key, k));
        if (field) st.set(field.key, decode(field.type, v, st.get(field.key)!, `${t.name}.${field.key}`));
      }
      return st;
    }
    case 'structs': {
      if (n.t === 'null') return null;
      if (n.t !== 'arr') throw mismatch();
      const old = Array.isArray(cur) ? (cur as StructVal[]) : [];
      return n.v.map((e, i) => decode(t.of, e, old[i] ?? zero(t.of), `${where}[${i}]`) as StructVal);
    }
  }
}

function isEmpty(t: GoType, v: GoVal): boolean {
  if (t.k === 'struct') return false; // Go's omitempty never omits a struct
  if (v === null || v === '' || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (v instanceof Set || v instanceof Map) return v.size === 0;
  return false;
}

// Go map keys are written sorted by their UTF-8 bytes.
function sortedKeys(keys: Iterable<string>): string[] {
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

function encode(t: GoType, v: GoVal): string {
  if (v === null) return 'null';
  switch (t.k) {
    case 'string': return goJsonString(v as string);
    case 'bool': return String(v);
    case 'time': return `"${v as string}"`;
    case 'strings': return `[${(v as string[]).map(goJsonString).join(',')}]`;
    case 'set': return `{${sortedKeys(v as Set<string>).map((k) => `${goJsonString(k)}:{}`).join(',')}}`;
    case 'stringMap': {
      const m = v as Map<string, string>;
      return `{${sortedKeys(m.keys()).map((k) => `${goJsonString(k)}:${goJsonString(m.get(k)!)}`).join(',')}}`;
    }
    case 'struct': {
      const st = v as StructVal;
      const parts = t.fields.filter((fd) => !(fd.omitempty && isEmpty(fd.type, st.get(fd.key)!)))
        .map((fd) => `${goJsonString(fd.key)}:${encode(fd.type, st.get(fd.key)!)}`);
      return `{${parts.join(',')}}`;
    }
    case 'structs': return `[${(v as StructVal[]).map((e) => encode(t.of, e)).join(',')}]`;
  }
}

/** The OCI config skopeo writes for a Docker image config (Go decode into image-spec's Image, then encode). */
export function dockerConfigToOci(config: Buffer): Buffer {
  let tree: JsonTree;
  try {
    tree = parseJsonTree(config.toString('utf8'));
  } catch (err) {
    throw new Error(`image config: not valid JSON (${printable((err as Error).message)})`);
  }
  const value = decode(IMAGE, tree, zero(IMAGE), 'Image');
  return Buffer.from(encode(IMAGE, value));
}

interface Descriptor { mediaType?: string; digest: string; size: number; urls?: string[]; annotations?: Record<string, string>; platform?: Platform }
interface Platform { architecture?: string; os?: string; 'os.version'?: string; 'os.features'?: string[]; variant?: string }

// image-spec Descriptor field order: mediaType, digest, size, urls, annotations, platform.
function descriptorJson(d: Descriptor): string {
  const parts = [`"mediaType":${goJsonString(d.mediaType ?? '')}`, `"digest":${goJsonString(d.digest)}`, `"size":${d.size}`];
  if (d.urls?.length) parts.push(`"urls":[${d.urls.map(goJsonString).join(',')}]`);
  if (d.annotations && Object.keys(d.annotations).length) {
    parts.push(`"annotations":{${sortedKeys(Object.keys(d.annotations)).map((k) => `${goJsonString(k)}:${goJsonString(d.annotations![k]!)}`).join(',')}}`);
  }
  if (d.platform) {
    const p = d.platform;
    const pp = [`"architecture":${goJsonString(p.architecture ?? '')}`, `"os":${goJsonString(p.os ?? '')}`];
    if (p['os.version']) pp.push(`"os.version":${goJsonString(p['os.version'])}`);
    if (p['os.features']?.length) pp.push(`"os.features":[${p['os.features'].map(goJsonString).join(',')}]`);
    if (p.variant) pp.push(`"variant":${goJsonString(p.variant)}`);
    parts.push(`"platform":{${pp.join(',')}}`);
  }
  return `{${parts.join(',')}}`;
}

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export interface ConvertedImage {
  manifest: { mediaType: string; bytes: Buffer };
  config: Buffer;
}

/**
 * An image as skopeo stores it in an OCI layout: OCI manifests pass through untouched; a
 * Docker schema2 manifest is converted along with its config (layer blobs stay as they are).
 */
export function toOciImage(manifest: { mediaType: string; bytes: Buffer }, config: Buffer): ConvertedImage {
  if (manifest.mediaType === OCI_MANIFEST) return { manifest, config };
  if (manifest.mediaType !== DOCKER_MANIFEST) throw new Error(`cannot store a ${manifest.mediaType} manifest in an OCI layout`);
  const m = JSON.parse(manifest.bytes.toString('utf8')) as { layers?: Descriptor[] };
  const ociConfig = dockerConfigToOci(config);
  const layers = (m.layers ?? []).map((l) => {
    const mediaType = LAYER_TYPES[l.mediaType ?? ''];
    if (!mediaType) throw new Error(`Unknown media type during manifest conversion: "${l.mediaType}"`);
    return descriptorJson({ mediaType, digest: l.digest, size: l.size, ...(l.urls ? { urls: l.urls } : {}) });
  });
  const configDesc = descriptorJson({ mediaType: OCI_CONFIG, digest: sha256(ociConfig), size: ociConfig.length });
  const bytes = Buffer.from(`{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":${configDesc},"layers":[${layers.join(',')}]}`);
  return { manifest: { mediaType: OCI_MANIFEST, bytes }, config: ociConfig };
}

/**
 * The index skopeo (`copy --all`) stores for a manifest list: every entry repointed at its
 * converted manifest (`converted` maps old digest → new manifest bytes), platform kept, Docker's
 * `features` dropped. An OCI index passes through untouched.
 */
export function toOciIndex(index: { mediaType: string; bytes: Buffer }, converted: ReadonlyMap<string, Buffer>): { mediaType: string; bytes: Buffer } {
  if (index.mediaType === OCI_INDEX) return index;
  if (index.mediaType !== DOCKER_LIST) throw new Error(`${index.mediaType} is not a manifest list`);
  const list = JSON.parse(index.bytes.toString('utf8')) as { manifests?: Descriptor[] };
  const entries = (list.manifests ?? []).map((d) => {
    const bytes = converted.get(d.digest);
    if (!bytes) throw new Error(`no converted manifest for list entry ${d.digest}`);
    const p = d.platform ?? {};
    return descriptorJson({
      mediaType: OCI_MANIFEST, digest: sha256(bytes), size: bytes.length,
      ...(d.urls ? { urls: d.urls } : {}),
      platform: {
        architecture: p.architecture ?? '', os: p.os ?? '',
        ...(p['os.version'] ? { 'os.version': p['os.version'] } : {}),
        ...(p['os.features'] ? { 'os.features': p['os.features'] } : {}),
        ...(p.variant ? { variant: p.variant } : {}),
      },
    });
  });
  return { mediaType: OCI_INDEX, bytes: Buffer.from(`{"schemaVersion":2,"mediaType":"${OCI_INDEX}","manifests":[${entries.join(',')}]}`) };
}
