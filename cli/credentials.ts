/**
 * Credentials a fetching command takes from the caller and hands to the build only (never to a
 * recipe): the credential-carrying part of --curl-opts, and the netrc file.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { readNetrc, splitSecretCurlOpts, type SplitCurlOpts } from '../lib/fetch/index.js';
import type { BuildSecrets } from '../lib/recipe/index.js';
import { EXIT, UserError } from './errors.js';

export interface NetrcArgs {
  netrcFile?: string;
}

export function withNetrcOption<T>(y: Argv<T>): Argv<T & NetrcArgs> {
  return y.option('netrc-file', {
    type: 'string',
    describe: 'netrc file with credentials per host (default $NETRC, else ~/.netrc if it exists; as curl --netrc-file and Nix netrc-file); never stored',
  }) as Argv<T & NetrcArgs>;
}

/**
 * The netrc file in effect: --netrc-file, else $NETRC, else ~/.netrc when it exists. One that
 * was named explicitly must be readable and well-formed (a usage error otherwise).
 */
export function netrcFileFor(a: NetrcArgs, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const named = a.netrcFile ?? (env.NETRC || undefined);
  if (named !== undefined) {
    const file = resolve(named);
    try {
      readNetrc(file);
    } catch (e) {
      throw new UserError(`${(e as Error).message} (from ${a.netrcFile !== undefined ? '--netrc-file' : 'NETRC'})`, EXIT.usage);
    }
    return file;
  }
  const home = env.HOME && isAbsolute(env.HOME) ? env.HOME : homedir();
  const file = join(home, '.netrc');
  return existsSync(file) ? file : undefined;
}

/** --curl-opts split into its stored part and its credentials; a malformed value is a usage error. */
export function splitCurlOptsArg(curlOpts: string | undefined): SplitCurlOpts {
  if (!curlOpts) return { stored: '', secret: '' };
  try {
    return splitSecretCurlOpts(curlOpts, '--curl-opts');
  } catch (e) {
    throw new UserError((e as Error).message, EXIT.usage);
  }
}

/** What the build gets besides its recipe. */
export function buildSecrets(secretCurlOpts: string, netrcFile: string | undefined): BuildSecrets {
  return { ...(secretCurlOpts ? { curlOpts: secretCurlOpts } : {}), ...(netrcFile !== undefined ? { netrcFile } : {}) };
}
