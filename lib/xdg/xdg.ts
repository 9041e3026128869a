// The XDG base directories, as the specification says: a variable that is unset, empty or not
// an absolute path is ignored, and the default under the home directory is used. The home
// directory is $HOME when that is absolute, else the account's home from the passwd database
// (os.homedir() would return a relative or empty $HOME as it is).
import { userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';

type Env = NodeJS.ProcessEnv;

/** An absolute path from the environment, or undefined when unset, empty or relative. */
function absoluteVar(env: Env, name: string): string | undefined {
  const v = env[name];
  return v && isAbsolute(v) ? v : undefined;
}

/** $HOME if absolute, else the passwd entry's home directory. */
export function homeDir(env: Env = process.env): string {
  return absoluteVar(env, 'HOME') ?? userInfo().homedir;
}

/** $XDG_DATA_HOME, default ~/.local/share. */
export function dataHome(env: Env = process.env): string {
  return absoluteVar(env, 'XDG_DATA_HOME') ?? join(homeDir(env), '.local', 'share');
}

/** $XDG_CONFIG_HOME, default ~/.config. */
export function configHome(env: Env = process.env): string {
  return absoluteVar(env, 'XDG_CONFIG_HOME') ?? join(homeDir(env), '.config');
}

/** $XDG_CACHE_HOME, default ~/.cache. */
export function cacheHome(env: Env = process.env): string {
  return absoluteVar(env, 'XDG_CACHE_HOME') ?? join(homeDir(env), '.cache');
}

/** $XDG_RUNTIME_DIR, or undefined (the specification has no default). */
export function runtimeDir(env: Env = process.env): string | undefined {
  return absoluteVar(env, 'XDG_RUNTIME_DIR');
}
