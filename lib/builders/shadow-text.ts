// `${shadowSetup}` outside the root stage, and the POSIX form of its tests: light, so a build
// without runAsRoot never loads the sandbox.
import { shadowSetup, type ShadowSetupVersion } from '../build/index.js';

/** `[[ ! -f X ]]` → `[ ! -f X ]`: the same test for a POSIX sh (dash has no `[[`). */
export function posixTests(text: string): string {
  return text.replace(/\[\[ (.*?) \]\]/g, '[ $1 ]');
}

/**
 * `${shadowSetup}` in extraCommands, which /bin/sh runs on the host inside the layer directory:
 * the files go to the layer (`./etc/…`), never the host's /etc.
 */
export function expandShadowSetupForLayerDir(text: string, version: ShadowSetupVersion): string {
  if (!text.includes('${shadowSetup}')) return text;
  const setup = posixTests(shadowSetup(version, null, '/bin/sh')).replaceAll(' /etc/', ' ./etc/');
  return text.replaceAll('${shadowSetup}', setup);
}
