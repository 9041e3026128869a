/** lib/xdg: where per-user data, configuration and caches live (XDG base directories). */
export { cacheHome, configHome, dataHome, homeDir, runtimeDir } from './xdg.js';
