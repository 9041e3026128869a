// Store paths written in text (a config's Cmd/Env, a script): `<storeDir>/<32 nix32>-<name>`,
// as nixpkgs finds them by scanning the layer's json and the script for references.
const NAME_CHARS = "A-Za-z0-9+\\-._?=";

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every store path named in `text`, sorted and unique (a path's sub-path counts as the path). */
export function storePathsIn(text: string, storeDir: string): string[] {
  const re = new RegExp(`${escapeRegExp(storeDir)}/[0123456789abcdfghijklmnpqrsvwxyz]{32}-[${NAME_CHARS}]+`, 'g');
  return [...new Set(text.match(re) ?? [])].sort();
}
