// The build spec: dockerTools.buildImage's arguments as JSON (or YAML), validated into a typed
// value. Pure: no file system, no store. Every error names the file and the key path.
import { parseHash } from '../hash/index.js';
import type { Json } from '../recipe/index.js';
import { BuildSpecError, unknownKeyMessage } from './spec-errors.js';

export type Compressor = 'none' | 'gz' | 'zstd';
export type SandboxChoice = 'auto' | 'namespace' | 'vm';

/** What `fetch-image REF --json` prints; the keys a pin object may hold. */
export interface ImagePin {
  imageName: string;
  imageDigest: string;
  /** SRI or any sha256 encoding (the pin's `hash` or `sha256`). */
  hash: string;
  finalImageName?: string;
  finalImageTag?: string;
  os?: string;
  arch?: string;
  variant?: string;
  /** Not printed by a pull: for a registry over plain http or with a self-signed certificate. */
  tlsVerify?: boolean;
  /** The store path the pin was printed with: checked against the one its hash and names give. */
  storePath?: string;
}

export type FromImage =
  | { kind: 'store'; path: string }
  | { kind: 'pin'; pin: ImagePin }
  /** Another build spec, relative to this one's directory as written. */
  | { kind: 'spec'; path: string };

export type CopyToRootEntry =
  | { kind: 'store'; path: string }
  /** A local file or directory, relative to the spec's directory as written. */
  | { kind: 'local'; path: string }
  | { kind: 'url'; url: string; hash: string; unpack: boolean; name?: string };

export interface BuildSpec {
  name: string;
  tag: string | null;
  fromImage: FromImage | null;
  copyToRoot: CopyToRootEntry[];
  keepContentsDirlinks: boolean;
  config: { [key: string]: Json } | null;
  extraCommands: string;
  uid: number;
  gid: number;
  architecture: string;
  created: string;
  compressor: Compressor;
  runAsRoot: string | null;
  diskSize: number;
  buildVMMemorySize: number;
  sandbox: SandboxChoice | null;
  network: boolean;
  shadow: string | null;
  shadowSetupVersion: 'current' | '2016';
}

export interface ParsedSpec {
  spec: BuildSpec;
  /** Notes for the user (deprecated keys, impurity). */
  warnings: string[];
}

export const DEFAULT_CREATED = '1970-01-01T00:00:01Z';

const SPEC_KEYS = [
  'name', 'tag', 'fromImage', 'copyToRoot', 'contents', 'keepContentsDirlinks', 'config', 'extraCommands', 'uid', 'gid',
  'architecture', 'created', 'compressor', 'runAsRoot', 'diskSize', 'buildVMMemorySize', 'sandbox', 'network', 'shadow', 'shadowSetupVersion',
] as const;

const PIN_KEYS = ['imageName', 'imageDigest', 'hash', 'sha256', 'finalImageName', 'finalImageTag', 'os', 'arch', 'variant', 'tlsVerify', 'storePath', 'path', 'indexDigest'] as const;
const URL_KEYS = ['url', 'hash', 'sha256', 'unpack', 'name'] as const;

type ConfigCheck = 'strings' | 'string' | 'stringMap' | 'emptyObjectMap' | 'object' | 'boolean' | 'integer';
/** The image config's `config` object (Docker image spec, as buildImage's `config`). */
const CONFIG_KEYS: Record<string, ConfigCheck> = {
  Cmd: 'strings', Entrypoint: 'strings', Env: 'strings', User: 'string', WorkingDir: 'string',
  ExposedPorts: 'emptyObjectMap', Volumes: 'emptyObjectMap', Labels: 'stringMap', StopSignal: 'string',
  Healthcheck: 'object', OnBuild: 'strings', Shell: 'strings', ArgsEscaped: 'boolean', StopTimeout: 'integer',
};

/** Go's GOARCH for this machine, as nixpkgs' default `architecture`. */
export function hostArchitecture(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}

function isObject(v: unknown): v is { [key: string]: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`);

class Checker {
  constructor(readonly file: string) {}

  fail(key: string, problem: string): never {
    throw new BuildSpecError(this.file, key, problem);
  }

  keys(obj: { [key: string]: unknown }, known: readonly string[], prefix: string): void {
    for (const k of Object.keys(obj)) if (!known.includes(k)) this.fail(prefix + k, unknownKeyMessage(k, known));
  }

  string(v: unknown, key: string): string {
    if (typeof v !== 'string') this.fail(key, `expected a string, got ${describe(v)}`);
    return v;
  }

  optString(v: unknown, key: string): string | undefined {
    return v === undefined ? undefined : this.string(v, key);
  }

  boolean(v: unknown, key: string, dflt: boolean): boolean {
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') this.fail(key, `expected true or false, got ${describe(v)}`);
    return v;
  }

  integer(v: unknown, key: string, dflt: number, min: number): number {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.fail(key, `expected an integer ≥ ${min}, got ${describe(v)}`);
    return v;
  }

  oneOf<T extends string>(v: unknown, key: string, choices: readonly T[], dflt: T): T;
  oneOf<T extends string>(v: unknown, key: string, choices: readonly T[], dflt: null): T | null;
  oneOf<T extends string>(v: unknown, key: string, choices: readonly T[], dflt: T | null): T | null {
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) this.fail(key, `expected one of ${choices.join(', ')}, got ${describe(v)}`);
    return v as T;
  }
}

const STORE_PATH_RE = /^\/.*\/[0123456789abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+\-._?=]+$/;
/** Image names as a registry accepts them (lower-case path components, optional host:port). */
const IMAGE_NAME_RE = /^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

function isStorePathIn(v: string, storeDir: string): boolean {
  return v.startsWith(storeDir + '/') && STORE_PATH_RE.test(v) && !v.slice(storeDir.length + 1).includes('/');
}

function checkConfig(c: Checker, v: unknown): { [key: string]: Json } | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) c.fail('config', `expected an object, got ${describe(v)}`);
  c.keys(v, Object.keys(CONFIG_KEYS), 'config.');
  for (const [k, check] of Object.entries(CONFIG_KEYS)) {
    const val = v[k];
    const key = `config.${k}`;
    if (val === undefined || val === null) continue;
    switch (check) {
      case 'strings':
        if (!Array.isArray(val)) c.fail(key, `expected an array of strings, got ${describe(val)}`);
        val.forEach((s, i) => c.string(s, `${key}[${i}]`));
        if (k === 'Env') val.forEach((s, i) => { if (!String(s).includes('=')) c.fail(`${key}[${i}]`, `expected NAME=VALUE, got ${JSON.stringify(s)}`); });
        break;
      case 'string':
        c.string(val, key);
        break;
      case 'stringMap':
        if (!isObject(val)) c.fail(key, `expected an object, got ${describe(val)}`);
        for (const [lk, lv] of Object.entries(val)) c.string(lv, `${key}.${lk}`);
        break;
      case 'emptyObjectMap':
        if (!isObject(val)) c.fail(key, `expected an object, got ${describe(val)}`);
        for (const [ek, ev] of Object.entries(val)) {
          if (!isObject(ev) || Object.keys(ev).length) c.fail(`${key}.${ek}`, `expected {}, got ${describe(ev)}`);
          if (k === 'ExposedPorts' && !/^[0-9]+(?:-[0-9]+)?(?:\/(?:tcp|udp|sctp))?$/.test(ek)) c.fail(`${key}.${ek}`, 'expected PORT or PORT/tcp|udp|sctp');
        }
        break;
      case 'object':
        if (!isObject(val)) c.fail(key, `expected an object, got ${describe(val)}`);
        break;
      case 'boolean':
        c.boolean(val, key, false);
        break;
      case 'integer':
        c.integer(val, key, 0, 0);
        break;
    }
  }
  return v as { [key: string]: Json };
}

/** `hash` (SRI or prefixed) and/or `sha256` (any encoding), as a pin prints both: they must agree. */
function checkHash(c: Checker, obj: { [key: string]: unknown }, key: string): string {
  if (obj.hash === undefined && obj.sha256 === undefined) c.fail(`${key}.hash`, 'missing: a fixed output needs its hash (SRI sha256-…, or sha256 in any encoding)');
  const parse = (v: unknown, k: string, algo?: 'sha256') => {
    try {
      return parseHash(c.string(v, k), algo);
    } catch (e) {
      return c.fail(k, (e as Error).message);
    }
  };
  const h = obj.hash !== undefined ? parse(obj.hash, `${key}.hash`) : undefined;
  const s = obj.sha256 !== undefined ? parse(obj.sha256, `${key}.sha256`, 'sha256') : undefined;
  if (h && s && !h.equals(s)) c.fail(`${key}.sha256`, `${s.sri} disagrees with hash ${h.sri}`);
  if (h && h.algo !== 'sha256') c.fail(`${key}.hash`, `expected a sha256 hash, got ${h.algo}`);
  return (h ?? s)!.sri;
}

function checkFromImage(c: Checker, v: unknown, storeDir: string): FromImage | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') {
    if (v === '') c.fail('fromImage', 'expected a store path, a pin object or a build spec path, got ""');
    return v.startsWith(storeDir + '/')
      ? (isStorePathIn(v, storeDir) ? { kind: 'store', path: v } : c.fail('fromImage', `'${v}' is not a store path (${storeDir}/<hash>-<name>)`))
      : { kind: 'spec', path: v };
  }
  if (!isObject(v)) c.fail('fromImage', `expected a store path, a pin object or a build spec path, got ${describe(v)}`);
  c.keys(v, PIN_KEYS, 'fromImage.');
  const pin: ImagePin = {
    imageName: c.string(v.imageName, 'fromImage.imageName'),
    imageDigest: c.string(v.imageDigest, 'fromImage.imageDigest'),
    hash: checkHash(c, v, 'fromImage'),
  };
  if (!/^sha256:[0-9a-f]{64}$/.test(pin.imageDigest)) c.fail('fromImage.imageDigest', `expected sha256:<64 hex digits>, got ${JSON.stringify(pin.imageDigest)}`);
  for (const k of ['finalImageName', 'finalImageTag', 'os', 'arch', 'variant'] as const) {
    const s = c.optString(v[k], `fromImage.${k}`);
    if (s !== undefined && s !== '') pin[k] = s;
  }
  for (const k of ['path', 'indexDigest'] as const) c.optString(v[k], `fromImage.${k}`);
  const storePath = c.optString(v.storePath, 'fromImage.storePath');
  if (storePath !== undefined) pin.storePath = storePath;
  if (v.tlsVerify !== undefined) pin.tlsVerify = c.boolean(v.tlsVerify, 'fromImage.tlsVerify', true);
  return { kind: 'pin', pin };
}

function checkCopyEntry(c: Checker, v: unknown, key: string, storeDir: string): CopyToRootEntry {
  if (typeof v === 'string') {
    if (v === '') c.fail(key, 'expected a store path or a local path, got ""');
    if (v.startsWith(storeDir + '/')) {
      if (!isStorePathIn(v, storeDir)) c.fail(key, `'${v}' is not a store path (${storeDir}/<hash>-<name>)`);
      return { kind: 'store', path: v };
    }
    return { kind: 'local', path: v };
  }
  if (!isObject(v)) c.fail(key, `expected a store path, a local path or {"url", "hash", "unpack"}, got ${describe(v)}`);
  c.keys(v, URL_KEYS, `${key}.`);
  const url = c.string(v.url, `${key}.url`);
  if (!/^https?:\/\//.test(url)) c.fail(`${key}.url`, `expected an http(s) URL, got ${JSON.stringify(url)}`);
  const entry: CopyToRootEntry = { kind: 'url', url, hash: checkHash(c, v, key), unpack: c.boolean(v.unpack, `${key}.unpack`, false) };
  const name = c.optString(v.name, `${key}.name`);
  if (name !== undefined) entry.name = name;
  return entry;
}

/**
 * Validates a parsed spec document. `file` names it in errors; `storeDir` tells store paths from
 * local paths.
 */
export function checkBuildSpec(doc: unknown, file: string, storeDir: string): ParsedSpec {
  const c: Checker = new Checker(file);
  const warnings: string[] = [];
  if (!isObject(doc)) c.fail('', `expected an object of buildImage arguments, got ${describe(doc)}`);
  c.keys(doc, SPEC_KEYS, '');
  if (doc.name === undefined) c.fail('name', 'missing: the image name is required (as buildImage { name = …; })');
  const name = c.string(doc.name, 'name');
  if (!IMAGE_NAME_RE.test(name)) c.fail('name', `'${name}' is not a valid image name (lower-case letters, digits, '.', '_', '-', '/' separated)`);
  let tag: string | null = null;
  if (doc.tag !== undefined && doc.tag !== null) {
    tag = c.string(doc.tag, 'tag');
    if (!TAG_RE.test(tag)) c.fail('tag', `'${tag}' is not a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})`);
  }
  if (doc.copyToRoot !== undefined && doc.contents !== undefined) c.fail('contents', "give either 'copyToRoot' or 'contents' (its deprecated name), not both");
  const rootKey = doc.contents !== undefined ? 'contents' : 'copyToRoot';
  if (rootKey === 'contents') warnings.push(`${file}: contents: deprecated, use copyToRoot (as nixpkgs renamed it)`);
  const rawRoot = doc[rootKey];
  const rootList = rawRoot === undefined || rawRoot === null ? [] : Array.isArray(rawRoot) ? rawRoot : [rawRoot];
  const copyToRoot = rootList.map((e, i) => checkCopyEntry(c, e, Array.isArray(rawRoot) ? `${rootKey}[${i}]` : rootKey, storeDir));

  let created = DEFAULT_CREATED;
  if (doc.created !== undefined) {
    created = c.string(doc.created, 'created');
    if (created === 'now') warnings.push(`${file}: created: "now" makes the image impure: the same spec built again elsewhere gives different bytes (the store keeps the first build)`);
    else if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/.test(created) || Number.isNaN(Date.parse(created))) {
      c.fail('created', `expected an RFC 3339 time like ${DEFAULT_CREATED} or "now", got ${JSON.stringify(created)}`);
    }
  }
  const runAsRoot = doc.runAsRoot === undefined || doc.runAsRoot === null ? null : c.string(doc.runAsRoot, 'runAsRoot');
  const shadow = doc.shadow === undefined || doc.shadow === null ? null : c.string(doc.shadow, 'shadow');
  if (shadow !== null && !isStorePathIn(shadow, storeDir)) c.fail('shadow', `expected a store path holding groupadd/useradd (${storeDir}/<hash>-<name>), got ${JSON.stringify(shadow)}`);
  const network = c.boolean(doc.network, 'network', false);
  if (network && runAsRoot === null) c.fail('network', 'only means something with runAsRoot (the network of the root stage)');
  if (network) warnings.push(`${file}: network: true lets runAsRoot reach the network: the build is recorded as impure`);

  const spec: BuildSpec = {
    name,
    tag,
    fromImage: checkFromImage(c, doc.fromImage, storeDir),
    copyToRoot,
    keepContentsDirlinks: c.boolean(doc.keepContentsDirlinks, 'keepContentsDirlinks', false),
    config: checkConfig(c, doc.config),
    extraCommands: doc.extraCommands === undefined || doc.extraCommands === null ? '' : c.string(doc.extraCommands, 'extraCommands'),
    uid: c.integer(doc.uid, 'uid', 0, 0),
    gid: c.integer(doc.gid, 'gid', 0, 0),
    architecture: doc.architecture === undefined ? hostArchitecture() : c.string(doc.architecture, 'architecture'),
    created,
    compressor: c.oneOf(doc.compressor, 'compressor', ['none', 'gz', 'zstd'] as const, 'gz'),
    runAsRoot,
    diskSize: c.integer(doc.diskSize, 'diskSize', 1024, 1),
    buildVMMemorySize: c.integer(doc.buildVMMemorySize, 'buildVMMemorySize', 512, 64),
    sandbox: c.oneOf(doc.sandbox, 'sandbox', ['auto', 'namespace', 'vm'] as const, null),
    network,
    shadow,
    shadowSetupVersion: c.oneOf(doc.shadowSetupVersion, 'shadowSetupVersion', ['current', '2016'] as const, 'current'),
  };
  if (spec.uid > 0xfffffffe) c.fail('uid', 'too large');
  if (spec.gid > 0xfffffffe) c.fail('gid', 'too large');
  return { spec, warnings };
}

/** Parses spec text: JSON, or YAML for `.yaml`/`.yml` files (the parser loads only then). */
export async function parseBuildSpecText(text: string, file: string): Promise<unknown> {
  if (/\.ya?ml$/i.test(file)) {
    // A CommonJS module: its `default` is the module in Node and in the bundle alike.
    const { parse } = (await import('yaml')).default;
    try {
      return parse(text, { strict: true, uniqueKeys: true }) as unknown;
    } catch (e) {
      throw new BuildSpecError(file, '', `not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new BuildSpecError(file, '', `not valid JSON: ${(e as Error).message.split('\n')[0]}`);
  }
}
