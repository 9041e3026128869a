import type { Argv, CommandModule } from 'yargs';
import {
  BUILTIN_BUILDERS, currentTagDigest, imageNames, pullImageStoreName, pullRecipe, pullV1Recipe, v1TarballRecipe, type ImageFormat,
} from '../../lib/builders/index.js';
import { platformOptions, type PlatformWanted } from '../../lib/registry/index.js';
import type { LocalStore } from '../../lib/store/index.js';
import type { RealiseResult, Recipe } from '../../lib/recipe/index.js';
import type { Hash } from '../../lib/hash/index.js';
import type { Json } from '../../lib/recipe/index.js';
import { HashMismatchError, prefetch, realise } from '../../lib/recipe/index.js';
import { emit, note, openStore, warn, type GlobalArgs } from '../context.js';
import { EXIT, UserError, type ErrorDetail } from '../errors.js';
import { retryCurlFlag } from '../network-options.js';
import { terminalProgress } from '../progress.js';
import { asUserError, declaredHashArg } from './url.js';
import { checkCreds, checkCurlOpts, imageRefArg, refuseOptions } from '../arg-checks.js';
import { substitutersFor, withSubstituterOptions } from '../substituters.js';
import { buildSecrets, netrcFileFor, withNetrcOption, type NetrcArgs } from '../credentials.js';
import { ADD_ROOT_OPTION, addRootIfAsked } from '../add-root.js';

interface PullArgs extends GlobalArgs, NetrcArgs {
  ref: string;
  sha256?: string;
  hash?: string;
  finalImageName?: string;
  finalImageTag?: string;
  os?: string;
  arch?: string;
  variant?: string;
  platform?: string;
  retry?: number;
  /** Unset means docker-archive (no yargs default: a v1 pull must tell whether it was given). */
  format?: ImageFormat;
  name?: string;
  /** Unset means true. */
  tlsVerify?: boolean;
  creds?: string;
  /** Unset means 4. */
  jobs?: number;
  keepFailed?: boolean;
  nix?: boolean;
  curlOpts?: string;
  registryVersion: 'v2' | 'v1';
  substituter?: string[];
  trustedKey?: string[];
  indexUrl?: string;
  registryUrl?: string;
  imageId?: string;
  tarball?: boolean;
  addRoot?: string;
}

/** What `--nix` prints: the pin, plus what pullImage needs to give the same store path. */
export interface NixPin {
  imageName: string;
  imageDigest: string;
  hash: string;
  finalImageName: string;
  finalImageTag: string;
  os: string;
  arch: string;
  variant?: string;
  /** The store path name, when it is not pullImage's default for finalImageName/finalImageTag. */
  name?: string;
  tlsVerify: boolean;
}

/**
 * The pin as nixpkgs `pullImage { … }`. Its store path depends only on `name` (default
 * `docker-image-<finalImageName>-<finalImageTag>.tar`, sanitised) and the flat hash, so `name`
 * is written whenever ours differs. pullImage has no variant argument (none of its versions):
 * the variant is a comment, and none is needed because imageDigest names that platform's manifest.
 */
export function nixExpression(p: NixPin): string {
  const q = (s: string) => JSON.stringify(s).replace(/\$\{/g, '\\${');
  return [
    'pullImage {',
    `  imageName = ${q(p.imageName)};`,
    `  imageDigest = ${q(p.imageDigest)};`,
    `  hash = ${q(p.hash)};`,
    `  finalImageName = ${q(p.finalImageName)};`,
    `  finalImageTag = ${q(p.finalImageTag)};`,
    `  os = ${q(p.os)};`,
    `  arch = ${q(p.arch)};`,
    ...(p.variant ? [`  # variant ${p.variant}: pullImage takes no variant argument; imageDigest already names this variant's manifest`] : []),
    ...(p.tlsVerify ? [] : ['  tlsVerify = false;']),
    ...(p.name !== undefined ? [`  name = ${q(p.name)};`] : []),
    '}',
  ].join('\n');
}

const DEFAULT_JOBS = 4;

/**
 * Options that only one registry API uses, each with whether it was given: with the other API
 * they would be ignored, so they are refused. v1 (pull.nix) has no platforms, final names,
 * formats, parallel layers or pullImage pin, and takes TLS settings from --curl-opts.
 */
function v1Only(a: PullArgs): Record<string, boolean> {
  return { '--tarball': a.tarball !== undefined, '--image-id': a.imageId !== undefined, '--index-url': a.indexUrl !== undefined, '--registry-url': a.registryUrl !== undefined };
}
function v2Only(a: PullArgs): Record<string, boolean> {
  return {
    '--final-image-name': a.finalImageName !== undefined, '--final-image-tag': a.finalImageTag !== undefined,
    '--platform': a.platform !== undefined, '--os': a.os !== undefined, '--arch': a.arch !== undefined, '--variant': a.variant !== undefined,
    '--format': a.format !== undefined, '--tls-verify': a.tlsVerify !== undefined, '--jobs': a.jobs !== undefined, '--nix': a.nix === true,
  };
}

/** Refuses what a pull would ignore, and checks --creds/--curl-opts before any work. */
async function checkPullArgs(a: PullArgs, hash: Hash | undefined): Promise<void> {
  if (a.registryVersion === 'v1') {
    refuseOptions(v2Only(a), "to a v1 pull (pull.nix has no platforms, final names, formats, parallel layers or pullImage pin; its TLS settings come from --curl-opts)");
  } else {
    refuseOptions(v1Only(a), 'to a v2 pull (they are for --registry-version v1)');
  }
  if (a.nix) {
    refuseOptions({ '--json': a.json === true }, 'with --nix (choose one form of the pin)');
    refuseOptions({ '--format oci': a.format === 'oci' }, 'with --nix (nixpkgs pullImage makes docker archives only)');
    refuseOptions({ '--sha256/--hash': hash !== undefined }, 'with --nix (--nix prints the pin a prefetch finds; leave the hash out)');
  }
  const jobs = a.jobs ?? DEFAULT_JOBS;
  if (!Number.isInteger(jobs) || jobs < 1) throw new UserError(`--jobs must be a positive integer, got ${jobs}`, EXIT.usage);
  await checkCreds(a.creds);
  await checkCurlOpts(a.curlOpts);
}

const pullOptions = (y: Argv<GlobalArgs>) =>
  withNetrcOption(withSubstituterOptions(y))
    .positional('ref', { type: 'string', demandOption: true, describe: 'image reference: name[:tag][@sha256:digest], also as docker://…' })
    .option('sha256', { type: 'string', describe: 'pinned sha256 of the archive (any encoding, as pullImage sha256)' })
    .option('hash', { type: 'string', describe: 'pinned hash as SRI (sha256-…), as pullImage hash' })
    .option('final-image-name', { type: 'string', describe: 'name recorded in the archive (default: the name as written)' })
    .option('final-image-tag', { type: 'string', describe: 'tag recorded in the archive (default: the tag given, else latest)' })
    .option('platform', { type: 'string', describe: 'os/arch[/variant], as skopeo/podman (same as --os/--arch/--variant; both must agree)' })
    .option('os', { type: 'string', describe: 'platform OS (default linux)' })
    .option('arch', { type: 'string', describe: "platform architecture (default: this machine's)" })
    .option('variant', { type: 'string', describe: 'platform variant, e.g. v7 for arm (matched exactly)' })
    .option('retry', { type: 'number', describe: 'retries after a transient network failure (default 5; as curl --retry)' })
    .option('format', { choices: ['docker-archive', 'oci'] as const, describe: 'docker-archive (skopeo-identical, flat hash; the default) or an OCI layout directory (recursive hash)' })
    .option('name', { type: 'string', describe: 'store path name (default docker-image-<finalImageName>-<finalImageTag>.tar, as nixpkgs)' })
    .option('tls-verify', { type: 'boolean', describe: 'verify TLS (the default); --tls-verify=false also allows plain http, as skopeo' })
    .option('creds', { type: 'string', describe: 'registry credentials user:password (never stored or logged)' })
    .option('jobs', { type: 'number', describe: `layers fetched in parallel (default ${DEFAULT_JOBS})` })
    .option('keep-failed', { type: 'boolean', describe: 'keep the build directory on failure' })
    .option('nix', { type: 'boolean', describe: 'print the pin as a nixpkgs pullImage { … } expression' })
    .option('curl-opts', { type: 'string', describe: "extra curl flags for the downloads, as pull.nix curlOpts; '-u USER:PASSWORD' is the registry's credentials (never stored)" })
    .option('registry-version', { choices: ['v2', 'v1'] as const, default: 'v2' as const, describe: 'v1: the legacy registry API, producing the pull.nix (2016) directory' })
    .option('index-url', { type: 'string', describe: 'v1 index (default https://index.docker.io)' })
    .option('registry-url', { type: 'string', describe: "v1 registry (default: the index's X-Docker-Endpoints, else the index host)" })
    .option('image-id', { type: 'string', describe: 'v1: pull this image id instead of resolving the tag' })
    .option('tarball', { type: 'boolean', describe: 'v1: also write the deterministic .tar.gz (with manifest.json, for docker/podman load)' })
    .option('add-root', ADD_ROOT_OPTION)
    .example('$0 ubuntu:22.04 --add-root ubuntu', 'prefetch: pull, add to the store (kept from gc by root ubuntu), print the pin')
    .example('$0 ubuntu:22.04 --json', 'the pin as JSON (imageDigest is the platform manifest digest)')
    .example('$0 ubuntu:22.04 --nix', 'the pin as a pullImage expression')
    .example('$0 ubuntu@sha256:… --sha256 1ab…', 'verify against a pin; no network at all if already in the store')
    .example('$0 pull --arch arm64 --variant v8 myregistry:5000/app:1.2', 'another platform, from a private registry')
    .example('$0 registry.example/team/app:1.2 --netrc-file ./netrc', 'registry credentials from a netrc file (never stored, sent to that registry only)')
    .example('$0 pull --platform linux/arm/v7 alpine:3.19', 'the same as --os linux --arch arm --variant v7')
    .example('$0 pull --retry 0 myregistry:5000/app:1.2', 'fail at the first network error')
    .example('$0 pull --registry-version v1 --index-url https://old-registry.example oldteam/app:2016', 'a legacy v1 pull, as pull.nix') as unknown as Argv<PullArgs>; // yargs' inferred kebab/camel keys

/** --platform merged with --os/--arch/--variant (a conflict is a usage error). */
function platformOf(a: PullArgs): PlatformWanted {
  try {
    return platformOptions(a);
  } catch (e) {
    throw new UserError((e as Error).message, EXIT.usage);
  }
}

async function pullHandler(a: PullArgs): Promise<void> {
  const ref = imageRefArg(a.ref);
  const hash = declaredHashArg(a);
  await checkPullArgs(a, hash);
  const store = openStore(a);
  if (a.registryVersion === 'v1') return pullV1Handler({ ...a, ref }, store, hash);
  const format = a.format ?? 'docker-archive';
  const platform = platformOf(a);
  let recipe;
  try {
    recipe = pullRecipe({
      reference: ref, format, tlsVerify: a.tlsVerify ?? true,
      ...(a.finalImageName ? { finalImageName: a.finalImageName } : {}),
      ...(a.finalImageTag ? { finalImageTag: a.finalImageTag } : {}),
      ...(platform.os ? { os: platform.os } : {}), ...(platform.arch ? { arch: platform.arch } : {}), ...(platform.variant ? { variant: platform.variant } : {}),
      ...(a.name ? { name: a.name } : {}), ...(hash ? { hash } : {}),
    });
  } catch (e) {
    throw new UserError((e as Error).message, EXIT.usage);
  }
  const opts = realiseOptions(a);
  if (hash) {
    const r = await realise(store, recipe, opts).catch(async (e: unknown) => {
      if (e instanceof HashMismatchError) throw await explainPullMismatch(e, { ...a, ref }, opts.callerEnv);
      return asUserError(e);
    });
    addRootIfAsked(a, store, r.path);
    emit(a, { storePath: r.path, path: store.realPath(r.path), hash: hash.sri, source: r.source, ...(r.buildInfo ?? {}) }, () => r.path);
    return;
  }
  const r = await prefetch(store, recipe, format === 'oci' ? 'recursive' : 'flat', opts).catch(asUserError);
  addRootIfAsked(a, store, r.path);
  const info = (r.buildInfo ?? {}) as { [key: string]: Json };
  const args = r.recipe.args as { imageName: string; finalImageName: string; finalImageTag: string };
  const pin = {
    imageName: args.imageName,
    imageDigest: String(info.imageDigest ?? ''),
    hash: r.hash.sri,
    sha256: r.hash.nix32,
    finalImageName: args.finalImageName,
    finalImageTag: args.finalImageTag,
    os: String(info.os ?? ''),
    arch: String(info.arch ?? ''),
    storePath: r.path,
    path: store.realPath(r.path),
  };
  const variant = typeof info.variant === 'string' && info.variant ? info.variant : undefined;
  if (a.nix) {
    const defaultName = pullImageStoreName(pin.finalImageName, pin.finalImageTag, 'docker-archive');
    process.stdout.write(nixExpression({
      ...pin, tlsVerify: a.tlsVerify ?? true, ...(variant ? { variant } : {}), ...(r.recipe.name !== defaultName ? { name: r.recipe.name } : {}),
    }) + '\n');
    return;
  }
  emit(a, { ...pin, ...(variant ? { variant } : {}), ...(info.indexDigest ? { indexDigest: info.indexDigest } : {}) }, () => [
    `imageName:      ${pin.imageName}`,
    `imageDigest:    ${pin.imageDigest}${info.indexDigest ? `   (platform manifest; index ${String(info.indexDigest)})` : ''}`,
    `platform:       ${String(info.platform ?? `${pin.os}/${pin.arch}`)}`,
    `finalImageName: ${pin.finalImageName}`,
    `finalImageTag:  ${pin.finalImageTag}`,
    `hash:           ${pin.hash}`,
    `sha256:         ${pin.sha256}`,
    `storePath:      ${pin.storePath}`,
  ]);
}

/**
 * A pull whose archive did not hash to the pin, explained: what was pulled (reference, digest,
 * platform), under which name and tag the archive was written (they are part of its bytes, so a
 * pin made with other ones cannot match), and where a tag now points.
 */
async function explainPullMismatch(e: HashMismatchError, a: PullArgs, env: NodeJS.ProcessEnv): Promise<UserError> {
  const info = e.buildInfo ?? {};
  const names = imageNames(a.ref, a.finalImageName, a.finalImageTag);
  const digest = typeof info.imageDigest === 'string' ? info.imageDigest : undefined;
  const lines = [e.message];
  lines.push(`pulled ${a.ref}${digest ? ` = ${digest}` : ''}${info.platform ? ` (${String(info.platform)})` : ''}${info.indexDigest ? `, from index ${String(info.indexDigest)}` : ''}`);
  const notes: string[] = [];
  if (!a.finalImageName) notes.push(`finalImageName defaulted to the image name '${names.finalImageName}'`);
  const written = a.ref.split('@')[0]!;
  const tagWritten = written.lastIndexOf(':') > written.lastIndexOf('/');
  if (!a.finalImageTag) notes.push(tagWritten ? `finalImageTag defaulted to the tag pulled '${names.finalImageTag}'` : `finalImageTag defaulted to '${names.finalImageTag}'`);
  lines.push(`archive written as ${names.finalImageName}:${names.finalImageTag}${notes.length ? ` (${notes.join('; ')})` : ''}; ` +
    'the name and tag are part of the archive, so give the --final-image-name/--final-image-tag the pin was made with');
  let tagNow: string | undefined;
  const tag = names.reference.tag;
  if (tag) {
    tagNow = names.reference.digest
      ? await currentTagDigest(a.ref, { tlsVerify: a.tlsVerify ?? true, env }).catch(() => undefined)
      : String(info.indexDigest ?? digest ?? '') || undefined;
    if (tagNow) {
      lines.push(`tag '${tag}' resolves now to ${tagNow}` +
        (names.reference.digest ? (tagNow === names.reference.digest ? ' (the digest pulled)' : `, not the ${names.reference.digest} pulled`) : '; if the pin is older, the tag has moved: pin by digest'));
    }
  }
  const details: { [key: string]: ErrorDetail } = {
    reference: a.ref, specified: e.specified.sri, got: e.got.sri, finalImageName: names.finalImageName, finalImageTag: names.finalImageTag,
    finalImageNameDefaulted: !a.finalImageName, finalImageTagDefaulted: !a.finalImageTag,
    ...(digest ? { imageDigest: digest } : {}), ...(tagNow ? { tagDigestNow: tagNow } : {}),
  };
  return new UserError(lines.join('\n'), EXIT.hashMismatch, details);
}

/** How a pull is realised: the builtin builders, the caller's environment plus --creds/--jobs/--curl-opts. */
function realiseOptions(a: PullArgs) {
  const callerEnv: NodeJS.ProcessEnv = { ...process.env, FETCH_IMAGE_JOBS: String(a.jobs ?? DEFAULT_JOBS) };
  if (a.creds) callerEnv.FETCH_IMAGE_CREDS = a.creds;
  const curlFlags = [process.env.NIX_CURL_FLAGS, a.curlOpts, retryCurlFlag(a.retry)].filter(Boolean).join(' ');
  if (curlFlags) callerEnv.NIX_CURL_FLAGS = curlFlags;
  return {
    builders: BUILTIN_BUILDERS,
    substituters: substitutersFor(a),
    callerEnv,
    secrets: buildSecrets('', netrcFileFor(a)),
    keepFailed: a.keepFailed ?? false,
    progress: terminalProgress(a),
    log: (l: string) => note(a, l),
    warn: (l: string) => warn(a, l),
  };
}

/** pull.nix's v1 pull: a recursive fixed output, and with --tarball its deterministic .tar.gz. */
async function pullV1Handler(a: PullArgs, store: LocalStore, hash: Hash | undefined): Promise<void> {
  const at = a.ref.lastIndexOf(':');
  const hasTag = at > a.ref.lastIndexOf('/');
  const imageName = hasTag ? a.ref.slice(0, at) : a.ref;
  const imageTag = hasTag ? a.ref.slice(at + 1) : 'latest';
  let recipe: Recipe;
  try {
    recipe = pullV1Recipe({
      imageName, imageTag, ...(a.imageId ? { imageId: a.imageId } : {}), ...(a.indexUrl ? { indexUrl: a.indexUrl } : {}),
      ...(a.registryUrl ? { registryUrl: a.registryUrl } : {}), ...(a.name ? { name: a.name } : {}), ...(hash ? { hash } : {}),
    });
  } catch (e) {
    throw new UserError((e as Error).message, EXIT.usage);
  }
  const opts = realiseOptions(a);
  let r: RealiseResult;
  let pinned = recipe;
  let pinHash: Hash;
  if (hash) {
    r = await realise(store, recipe, opts).catch(asUserError);
    pinHash = hash;
  } else {
    const p = await prefetch(store, recipe, 'recursive', opts).catch(asUserError);
    [r, pinned, pinHash] = [p, p.recipe, p.hash];
  }
  let tarball: string | undefined;
  if (a.tarball) tarball = (await realise(store, v1TarballRecipe(r.path, imageName, imageTag), opts)).path;
  addRootIfAsked(a, store, r.path);
  const info = r.buildInfo ?? {};
  const pin = {
    imageName, imageTag, imageId: String(info.imageId ?? pinned.args.imageId ?? ''),
    hash: pinHash.sri, sha256: pinHash.nix32, storePath: r.path, path: store.realPath(r.path),
    ...(tarball ? { tarball, tarballPath: store.realPath(tarball) } : {}),
  };
  if (hash && !a.json) {
    process.stdout.write([r.path, ...(tarball ? [tarball] : [])].join('\n') + '\n');
    return;
  }
  emit(a, pin, () => [
    `imageName: ${pin.imageName}`, `imageTag:  ${pin.imageTag}`, `imageId:   ${pin.imageId}`,
    `hash:      ${pin.hash}`, `sha256:    ${pin.sha256}`, `storePath: ${pin.storePath}`, ...(tarball ? [`tarball:   ${tarball}`] : []),
  ]);
}

export const pullCommand: CommandModule<GlobalArgs, PullArgs> = {
  command: 'pull <ref>',
  describe: 'Pull an image into the store (also the default command: fetch-image REF …)',
  builder: pullOptions,
  handler: pullHandler,
};

/** `fetch-image REF …` without a subcommand. */
export const defaultPullCommand: CommandModule<GlobalArgs, PullArgs> = {
  command: '$0 <ref>',
  describe: 'Pull an image (as nixpkgs pullImage / nix-prefetch-docker): prints the store path, or the pin without --sha256',
  builder: pullOptions,
  handler: pullHandler,
};
