// Where substituters and trusted keys come from: command-line flags, then the environment, then
// the config file `$FETCH_IMAGE_CONFIG` or `$XDG_CONFIG_HOME/fetch-image/config.json`
// (default `~/.config/fetch-image/config.json`):
//   { "substituters": ["http://cache.lan:8080", "/mnt/usb/cache"],
//     "trustedPublicKeys": ["cache.lan-1:BASE64…"], "requireSigs": true }
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { suggest } from '../text/index.js';
import { configHome } from '../xdg/index.js';
import { parsePublicKey, type PublicKey } from './keys.js';

export interface MirrorConfig {
  /** Binary caches to try, in order: directories, file://, http(s):// URLs. */
  substituters: string[];
  /** `name:base64` public keys whose signatures are trusted. */
  trustedPublicKeys: string[];
  /** Refuse narinfos without a valid trusted signature (default true). */
  requireSigs: boolean;
  /** The config file that was read, if one existed. */
  file?: string;
}

export interface MirrorConfigOverrides {
  substituters?: readonly string[];
  trustedPublicKeys?: readonly string[];
  requireSigs?: boolean;
}

export function mirrorConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FETCH_IMAGE_CONFIG) return resolve(env.FETCH_IMAGE_CONFIG);
  return join(configHome(env), 'fetch-image', 'config.json');
}

/** The keys a config file may have; anything else is a typo that would silently do nothing. */
const CONFIG_KEYS = ['substituters', 'trustedPublicKeys', 'requireSigs'] as const;

/** What a JSON value is, for messages: `a string`, `a list`, `null`, … */
function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Refuses keys the file format does not have, suggesting the one probably meant. */
function checkKeys(json: Record<string, unknown>, file: string): void {
  for (const key of Object.keys(json)) {
    if ((CONFIG_KEYS as readonly string[]).includes(key)) continue;
    const near = suggest(key, CONFIG_KEYS);
    throw new Error(`unknown key '${key}' in ${file}${near ? ` (did you mean '${near}'?)` : ` (known keys: ${CONFIG_KEYS.join(', ')})`}`);
  }
}

function stringList(v: unknown, field: string, file: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new Error(`'${field}' in ${file} must be a list of strings, got ${jsonKind(v)}`);
  const bad = v.find((x) => typeof x !== 'string' || x === '');
  if (bad !== undefined) throw new Error(`'${field}' in ${file} must be a list of non-empty strings, got ${bad === '' ? 'an empty string' : jsonKind(bad)} in it`);
  return v as string[];
}

const words = (s: string | undefined): string[] => (s ? s.split(/\s+/).filter(Boolean) : []);

/**
 * The effective mirror settings: `overrides` (command-line flags) first, then
 * FETCH_IMAGE_SUBSTITUTERS / FETCH_IMAGE_TRUSTED_PUBLIC_KEYS (space-separated), then the file.
 * Keys are validated here so a typo fails at once, naming where it came from.
 */
export function loadMirrorConfig(env: NodeJS.ProcessEnv = process.env, overrides: MirrorConfigOverrides = {}): MirrorConfig {
  const file = mirrorConfigPath(env);
  let json: Record<string, unknown> = {};
  let found = false;
  try {
    const text = readFileSync(file, 'utf8');
    found = true;
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('expected a JSON object');
    json = parsed as Record<string, unknown>;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (!found && err.code === 'ENOENT') json = {};
    else throw new Error(`config file ${file}: ${err.message}`);
  }
  checkKeys(json, file);
  if (json.requireSigs !== undefined && typeof json.requireSigs !== 'boolean') throw new Error(`'requireSigs' in ${file} must be true or false, got ${jsonKind(json.requireSigs)}`);
  const fileSubs = stringList(json.substituters, 'substituters', file);
  const fileKeys = stringList(json.trustedPublicKeys, 'trustedPublicKeys', file);
  const keys: string[] = [];
  const addKeys = (list: readonly string[], from: string): void => {
    for (const k of list) {
      parsePublicKey(k, `'${k.slice(0, 40)}' (${from})`);
      keys.push(k.trim());
    }
  };
  addKeys(overrides.trustedPublicKeys ?? [], '--trusted-key');
  addKeys(words(env.FETCH_IMAGE_TRUSTED_PUBLIC_KEYS), 'FETCH_IMAGE_TRUSTED_PUBLIC_KEYS');
  addKeys(fileKeys, file);
  const subs = [...(overrides.substituters ?? []), ...words(env.FETCH_IMAGE_SUBSTITUTERS), ...fileSubs];
  const cfg: MirrorConfig = {
    substituters: [...new Set(subs)],
    trustedPublicKeys: [...new Set(keys)],
    requireSigs: overrides.requireSigs ?? (json.requireSigs as boolean | undefined) ?? true,
  };
  if (found) cfg.file = file;
  return cfg;
}

export function parseTrustedKeys(keys: readonly string[]): PublicKey[] {
  return keys.map((k) => parsePublicKey(k));
}
