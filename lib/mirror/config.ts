// Where substituters and trusted keys come from: command-line flags, then the environment, then
// the config file `$FETCH_IMAGE_CONFIG` or `$XDG_CONFIG_HOME/fetch-image/config.json`
// (default `~/.config/fetch-image/config.json`):
//   { "substituters": ["http://cache.lan:8080", "/mnt/usb/cache"],
//     "trustedPublicKeys": ["cache.lan-1:BASE64…"], "requireSigs": true }
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
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
  if (env.FETCH_IMAGE_CONFIG) return env.FETCH_IMAGE_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(base, 'fetch-image', 'config.json');
}

function stringList(v: unknown, field: string, file: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${file}: "${field}" must be a list of strings`);
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
  if (json.requireSigs !== undefined && typeof json.requireSigs !== 'boolean') throw new Error(`${file}: "requireSigs" must be true or false`);
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
