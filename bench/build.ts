// Issue 14's benchmark: building one layer of ~5,000 files / 150 MB (copyToRoot of a local
// directory) on a base pulled from the local registry, against buildah's equivalent
// (`buildah bud --isolation chroot --timestamp 1` of a Containerfile with COPY, then
// `buildah push docker-archive:`), and the rebuild of an unchanged spec against Node's start-up.
import { execSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeImage, pushImage } from '../store-fixtures/images/index.js';
import { CLI_PATH } from '../test/helpers/cli.js';
import { startRegistry, type Registry } from '../test/helpers/registry.js';
import { shadowBaseEntries } from '../test/helpers/shadow-base.js';
import { compare, type Comparison } from './measure.js';

const CLI = `node ${CLI_PATH}`;

/** Seeded pseudo-text (xorshift over a small alphabet): compressible like source files. */
function text(size: number, seed: number): Buffer {
  const alphabet = Buffer.from('abcdefghijklmnopqrstuvwxyz      \n{}();=._-0123456789');
  const buf = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    buf[i] = alphabet[x % alphabet.length]!;
  }
  return buf;
}

/** 5,000 files in 50 directories: 4,990 of ~10 KB and 10 of ~10 MB, ~150 MB in all. */
function makeTree(root: string): void {
  for (let d = 0; d < 50; d++) mkdirSync(join(root, 'usr/share/app', `d${d}`), { recursive: true });
  const small = text(10_000, 1);
  for (let i = 0; i < 4990; i++) {
    const body = Buffer.concat([Buffer.from(`file ${i}\n`), small.subarray(i % 97)]);
    writeFileSync(join(root, 'usr/share/app', `d${i % 50}`, `f${i}.txt`), body);
  }
  for (let i = 0; i < 10; i++) writeFileSync(join(root, 'usr/share/app', `blob${i}.dat`), text(10_000_000, i + 7));
}

export async function benchBuild(work: string): Promise<Comparison[]> {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const reg = await startRegistry();
  const rows: Comparison[] = [];
  try {
    // A Debian-sized base (~60 MB of files in two layers) in the real registry.
    const base = await makeImage(join(work, 'base-layout'), {
      layers: [
        { entries: [{ type: 'text', path: 'usr/lib/base.txt', size: 40_000_000, seed: 3 }, { type: 'file', path: 'etc/os-release', content: 'ID=debian\n' }] },
        { entries: [{ type: 'text', path: 'usr/share/doc/base.txt', size: 20_000_000, seed: 4 }] },
      ],
      runConfig: { Env: ['PATH=/usr/bin:/bin'], Cmd: ['/bin/sh'] },
    }, 'v1');
    await pushImage(base.dir, reg.port, 'bench/debian', 'bookworm', { sourceTag: 'v1' });
    const ctx = join(work, 'ctx');
    makeTree(join(ctx, 'app'));
    writeFileSync(join(ctx, 'Containerfile'), `FROM ${reg.host}/bench/debian:bookworm\nCOPY app/ /\n`);

    // Our store with the base pulled once (the pin), copied fresh before each run.
    const seed = join(work, 'seed-store');
    const pin = JSON.parse(execSync(`${CLI} --store ${seed} --json pull --tls-verify=false ${reg.host}/bench/debian:bookworm`).toString()) as Record<string, unknown>;
    writeFileSync(join(ctx, 'spec.json'), JSON.stringify({ name: 'bench-app', tag: 'v1', fromImage: { ...pin, tlsVerify: false }, copyToRoot: ['./app'], compressor: 'none' }));
    const store = join(work, 'store');
    // buildah keeps the pulled base in its own storage between runs, as our store keeps the pin.
    const buildah = `buildah --root ${join(work, 'buildah-root')} --runroot ${join(work, 'buildah-run')} --storage-driver vfs`;
    const out = join(work, 'buildah.tar');
    execSync(`${buildah} pull -q --tls-verify=false ${reg.host}/bench/debian:bookworm`, { stdio: 'ignore' });
    execSync('sync');
    const fresh = async () => {
      rmSync(store, { recursive: true, force: true });
      rmSync(out, { force: true });
      execSync(`cp -a ${seed} ${store} && ${buildah} rmi -f bench-app:v1 >/dev/null 2>&1 || true; sync`);
    };
    rows.push(await compare(
      'build: 5,000 files / 150 MB copyToRoot on a pulled base',
      `cd ${ctx} && ${CLI} --store ${store} build spec.json >/dev/null`,
      `cd ${ctx} && ${buildah} bud -q --isolation chroot --timestamp 1 --tls-verify=false -t bench-app:v1 -f Containerfile . >/dev/null && ${buildah} push -q bench-app:v1 docker-archive:${out}:bench-app:v1`,
      { setup: fresh, target: '≤ 0.5×, RSS ≤ 150 MiB' },
    ));
    // The rebuild of an unchanged spec: same path, no work; against Node starting and exiting.
    rows.push(await compare(
      'rebuild of an unchanged spec vs `node -e 0`',
      `cd ${ctx} && ${CLI} --store ${store} build spec.json >/dev/null`,
      'node -e 0',
      { runs: 9, target: '≤ +0.05 s' },
    ));
    rows.push(await benchRunAsRoot(join(work, 'root'), reg));
  } finally {
    await reg.stop();
  }
  return rows;
}

/**
 * Issue 15's case: the seed's shadow-basic runAsRoot on a Debian-like base (the host's
 * groupadd/useradd with their libraries, busybox sh) in the namespace sandbox, against buildah's
 * `RUN` of the same commands. Both keep the base unpacked between runs (our layer cache, buildah's
 * vfs storage); each run starts from a store without the output.
 */
export async function benchRunAsRoot(work: string, reg: Registry): Promise<Comparison> {
  mkdirSync(work, { recursive: true });
  // Debian-sized: the tools, and a layer of 3,000 files / 90 MB (buildah's vfs driver copies the whole root file system).
  const filler = Array.from({ length: 3000 }, (_, i) => ({ type: 'text' as const, path: `usr/share/doc/pkg${i % 60}/f${i}.txt`, size: 30_000, seed: i + 11 }));
  const base = await makeImage(join(work, 'base-layout'), { layers: [{ entries: shadowBaseEntries() }, { entries: filler }], runConfig: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] } }, 'v1');
  await pushImage(base.dir, reg.port, 'bench/shadowbase', '12', { sourceTag: 'v1' });
  const ref = `${reg.host}/bench/shadowbase:12`;
  const ctx = join(work, 'ctx');
  mkdirSync(ctx, { recursive: true });
  writeFileSync(join(ctx, 'Containerfile'), `FROM ${ref}\nRUN groupadd -r redis && useradd -r -g redis redis && mkdir /data && chown redis:redis /data\n`);
  const seed = join(work, 'seed-store');
  const pin = JSON.parse(execSync(`${CLI} --store ${seed} --json pull --tls-verify=false ${ref}`).toString()) as Record<string, unknown>;
  const spec = (name: string, runAsRoot: string) => JSON.stringify({ name, tag: 'v1', fromImage: { ...pin, tlsVerify: false }, runAsRoot, compressor: 'none' });
  writeFileSync(join(ctx, 'spec.json'), spec('shadow-basic', '#!/bin/sh\n${shadowSetup}\ngroupadd -r redis\nuseradd -r -g redis redis\nmkdir /data\nchown redis:redis /data\n'));
  // Another runAsRoot build on the same base fills the seed store's layer cache.
  writeFileSync(join(ctx, 'warm.json'), spec('warm', '#!/bin/sh\ntrue\n'));
  execSync(`cd ${ctx} && ${CLI} --store ${seed} build warm.json --sandbox namespace >/dev/null`);
  const store = join(work, 'store');
  const buildah = `buildah --root ${join(work, 'buildah-root')} --runroot ${join(work, 'buildah-run')} --storage-driver vfs`;
  const out = join(work, 'buildah.tar');
  execSync(`${buildah} pull -q --tls-verify=false ${ref}`, { stdio: 'ignore' });
  const fresh = async () => {
    rmSync(store, { recursive: true, force: true });
    rmSync(out, { force: true });
    execSync(`cp -a ${seed} ${store} && ${buildah} rmi -f shadow-basic:v1 >/dev/null 2>&1 || true; sync`);
  };
  return compare(
    'build: runAsRoot shadow-basic (namespace) on a Debian-like base',
    `cd ${ctx} && ${CLI} --store ${store} build spec.json --sandbox namespace >/dev/null`,
    `cd ${ctx} && ${buildah} bud -q --isolation chroot --timestamp 1 --tls-verify=false -t shadow-basic:v1 -f Containerfile . >/dev/null && ${buildah} push -q shadow-basic:v1 docker-archive:${out}:shadow-basic:v1`,
    { setup: fresh, target: '≤ 0.3×' },
  );
}
