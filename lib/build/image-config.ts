import { createHash } from 'node:crypto';
import type { Json } from './image-types.js';

/**
 * The image config as nixpkgs' buildImage makes it:
 *   baseJson = builtins.toJSON { architecture; config; created; os = "linux"; }   (keys sorted)
 *   jq '.config.Env = $baseenv + .config.Env'          (the base's config.Env // [] prepended;
 *                                                       the base's other settings are not inherited)
 *   jq '. + {"rootfs": {"diff_ids": [], "type": "layers"}}'
 *   per layer, bottom first: diff_ids += ["sha256:…"], history += [{"created": <created>}]
 * so the keys come in the order architecture, config, created, os, rootfs, history, `config`'s
 * own keys sorted as builtins.toJSON sorts them (Env appended when absent, as jq does). The bytes
 * are compact JSON (nixpkgs' are jq's pretty print; no tool depends on the whitespace).
 * nixpkgs' stray `preferLocalBuild: true` (a derivation attribute that slipped into the
 * toJSON set) is left out.
 */

const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Keys sorted by bytes at every level, as builtins.toJSON writes an attribute set. */
export function sortedKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortedKeys);
  if (v === null || typeof v !== 'object') return v;
  const out: { [key: string]: Json } = {};
  for (const k of Object.keys(v).sort(byBytes)) out[k] = sortedKeys(v[k]!);
  return out;
}

function envOf(v: Json | undefined, where: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((e): e is string => typeof e === 'string')) throw new Error(`${where}: Env must be a list of strings`);
  return v;
}

export interface ImageConfigInput {
  /** The base image's config (its `config.Env` is inherited), or null. */
  baseConfig: { [key: string]: Json } | null;
  config: Json | null;
  architecture: string;
  created: string;
  /** All layers' diff_ids, bottom first. */
  diffIds: readonly string[];
}

export function imageConfig(input: ImageConfigInput): Buffer {
  if (input.config !== null && (typeof input.config !== 'object' || Array.isArray(input.config))) throw new Error('config: expected an object or null');
  const baseInner = input.baseConfig?.config;
  const baseEnv = baseInner && typeof baseInner === 'object' && !Array.isArray(baseInner) ? envOf(baseInner.Env, 'the base image config.config') : [];
  const config = (input.config === null ? {} : sortedKeys(input.config)) as { [key: string]: Json };
  config.Env = [...baseEnv, ...envOf(config.Env, 'config')];
  const image = {
    architecture: input.architecture,
    config,
    created: input.created,
    os: 'linux',
    rootfs: { diff_ids: [...input.diffIds], type: 'layers' },
    history: input.diffIds.map(() => ({ created: input.created })),
  };
  return Buffer.from(JSON.stringify(image));
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
