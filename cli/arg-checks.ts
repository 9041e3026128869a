// Checks of fetch arguments that must fail as usage errors (exit 2) before any work starts,
// rather than deep inside a builder as a failure (exit 1) or, worse, not at all.
// The parsers are loaded only when their option is given: a pinned pull of a valid path loads
// neither the fetch nor the registry code.
import { EXIT, UserError } from './errors.js';

const usage = (message: string): UserError => new UserError(message, EXIT.usage);

/** skopeo's transports other than docker://, which name local files, daemons and stores, not registries. */
const OTHER_TRANSPORTS = ['docker-archive', 'docker-daemon', 'oci', 'oci-archive', 'dir', 'containers-storage', 'sif', 'tarball', 'ostree'];

/**
 * An image reference as typed: `docker://REF` (skopeo's spelling) is REF; another skopeo
 * transport is refused, since only registries are pulled from.
 */
export function imageRefArg(ref: string): string {
  if (ref === '') throw usage('empty image reference');
  if (ref.startsWith('docker://')) {
    const rest = ref.slice('docker://'.length);
    if (rest === '') throw usage(`empty image reference after 'docker://'`);
    return rest;
  }
  const transport = /^([a-z-]+):/.exec(ref)?.[1];
  if (transport !== undefined && OTHER_TRANSPORTS.includes(transport)) {
    throw usage(`'${transport}:' is a skopeo transport for local images; fetch-image pulls from registries only (docker://REF or REF; for an image named '${transport}' write docker://${ref})`);
  }
  return ref;
}

/** `--curl-opts` parsed now, so that an unsupported flag is a usage error naming it. */
export async function checkCurlOpts(value: string | undefined): Promise<void> {
  if (!value) return;
  const { parseCurlFlags } = await import('../lib/fetch/index.js');
  try {
    parseCurlFlags(value, '--curl-opts');
  } catch (e) {
    throw usage((e as Error).message);
  }
}

/** `--creds` must be USER:PASSWORD; the value itself is never echoed. */
export async function checkCreds(value: string | undefined, flag = '--creds'): Promise<void> {
  if (value === undefined) return;
  const { parseCreds } = await import('../lib/registry/index.js');
  try {
    parseCreds(value);
  } catch {
    throw usage(`invalid ${flag}: expected USERNAME:PASSWORD`);
  }
}

/**
 * Refuses options given where they have no effect: `given` maps each flag to whether it was
 * given, `why` says where they do apply.
 */
export function refuseOptions(given: Record<string, boolean>, why: string): void {
  const flags = Object.keys(given).filter((flag) => given[flag]);
  if (flags.length) throw usage(`${flags.join(', ')} ${flags.length === 1 ? 'does' : 'do'} not apply ${why}`);
}
