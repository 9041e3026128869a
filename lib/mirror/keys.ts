// Ed25519 signing keys in Nix's text form (`nix-store --generate-binary-cache-key`):
// secret `name:base64(seed ‖ public)` (64 bytes), public `name:base64(public)` (32 bytes),
// signature `name:base64(sig)` (64 bytes).
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

export interface PublicKey {
  readonly name: string;
  /** The 32 raw key bytes. */
  readonly bytes: Buffer;
  readonly key: KeyObject;
}

export interface SecretKey {
  readonly name: string;
  readonly key: KeyObject;
  readonly publicKey: PublicKey;
}

const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

function splitKey(text: string, kind: string, bytes: number, where: string): { name: string; raw: Buffer } {
  const s = text.trim();
  const colon = s.indexOf(':');
  if (colon <= 0) throw new Error(`${kind} key ${where} is not in the form NAME:BASE64`);
  const name = s.slice(0, colon);
  const b64 = s.slice(colon + 1);
  const raw = Buffer.from(b64, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || raw.length !== bytes) {
    throw new Error(`${kind} key ${where} is corrupt: expected the base64 of ${bytes} bytes after '${name}:'`);
  }
  return { name, raw };
}

function publicFromRaw(name: string, raw: Buffer): PublicKey {
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(raw) }, format: 'jwk' });
  return { name, bytes: raw, key };
}

/** Parses `name:base64(32 bytes)`; `where` names the source in errors (a file, an option). */
export function parsePublicKey(text: string, where = `'${text.trim().slice(0, 40)}'`): PublicKey {
  const { name, raw } = splitKey(text, 'public', 32, where);
  return publicFromRaw(name, raw);
}

/** Parses `name:base64(64 bytes)` and checks that its public half belongs to its seed. */
export function parseSecretKey(text: string, where = 'given'): SecretKey {
  const { name, raw } = splitKey(text, 'secret', 64, where);
  const seed = raw.subarray(0, 32);
  const pub = raw.subarray(32);
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64url(seed), x: b64url(pub) }, format: 'jwk' });
  const derived = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x ?? '', 'base64url');
  if (!derived.equals(pub)) throw new Error(`secret key ${where} is corrupt: its public half does not match its seed`);
  return { name, key, publicKey: publicFromRaw(name, Buffer.from(pub)) };
}

export function formatPublicKey(k: PublicKey): string {
  return `${k.name}:${k.bytes.toString('base64')}`;
}

export function formatSecretKey(k: SecretKey): string {
  const seed = Buffer.from(k.key.export({ format: 'jwk' }).d ?? '', 'base64url');
  return `${k.name}:${Buffer.concat([seed, k.publicKey.bytes]).toString('base64')}`;
}

/** A fresh key pair named `name` (e.g. `cache.example.org-1`), as Nix's key generator makes. */
export function generateKeyPair(name: string): SecretKey {
  if (!name || name.includes(':') || /\s/.test(name)) throw new Error(`invalid key name '${name}': it must be non-empty, without ':' or spaces`);
  const { privateKey } = generateKeyPairSync('ed25519');
  const x = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x ?? '', 'base64url');
  return { name, key: privateKey, publicKey: publicFromRaw(name, x) };
}

/** `name:base64(signature)` over `message`. */
export function signText(k: SecretKey, message: string): string {
  return `${k.name}:${sign(null, Buffer.from(message), k.key).toString('base64')}`;
}

/**
 * Whether `sig` (`name:base64`) is a valid signature of `message` by one of `keys`, matched by
 * name as Nix does. A malformed signature is simply not valid.
 */
export function verifyText(message: string, sig: string, keys: readonly PublicKey[]): boolean {
  const colon = sig.indexOf(':');
  if (colon <= 0) return false;
  const name = sig.slice(0, colon);
  const raw = Buffer.from(sig.slice(colon + 1), 'base64');
  if (raw.length !== 64) return false;
  return keys.some((k) => k.name === name && verify(null, Buffer.from(message), k.key, raw));
}
