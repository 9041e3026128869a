// `npm run demo`: the main job, offline. A fixture registry on loopback serves a small image;
// fetch-image prefetches its pin, verifies it, then proves the pin holds with the registry gone.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBadRegistry } from './bad-registry/index.js';
import { makeImage } from './images/index.js';
import { CLI_PATH } from '../test/helpers/cli.js';

const CLI = CLI_PATH;

/** Runs the CLI asynchronously: the fixture registry lives in this process and must keep serving. */
async function step(title: string, args: string[], store: string, expectCode = 0): Promise<string> {
  console.log(`\n\x1b[1m# ${title}\x1b[0m\n$ fetch-image ${args.join(' ')}`);
  const child = spawn('node', [CLI, '--store', store, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    process.stdout.write(d);
  });
  child.stderr.on('data', (d: Buffer) => process.stdout.write(d));
  const code = await new Promise<number | null>((r) => child.once('close', r));
  if (code !== expectCode) throw new Error(`demo step failed (exit ${code}, expected ${expectCode}): fetch-image ${args.join(' ')}`);
  return out;
}

const work = mkdtempSync(join(tmpdir(), 'fetch-image-demo-'));
const reg = await startBadRegistry();
try {
  // An OCI image of two layers, served as the registry API serves it.
  const layout = await makeImage(join(work, 'layout'), {
    layers: [
      { entries: [{ type: 'dir', path: 'etc' }, { type: 'file', path: 'etc/os-release', content: 'NAME="demo"\nID=demo\n' }] },
      { entries: [{ type: 'file', path: 'usr/bin/hello', content: '#!/bin/sh\necho hello from the demo image\n', mode: 0o755 }] },
    ],
    runConfig: { Cmd: ['/usr/bin/hello'] },
  }, '1.0');
  const blobs = join(layout.dir, 'blobs', 'sha256');
  for (const hex of readdirSync(blobs)) reg.addBlob(readFileSync(join(blobs, hex)));
  const image = layout.images[0]!;
  reg.addManifest('demo/hello', image.manifest, image.mediaType, ['1.0']);
  const ref = `${reg.host}/demo/hello:1.0`;
  const store = join(work, 'store');
  console.log(`fixture registry on ${reg.url}, store at ${store}`);

  const pin = JSON.parse(await step('Prefetch: pull the image and print its pin (as nix-prefetch-docker)', ['--json', 'pull', '--tls-verify=false', ref], store)) as {
    imageDigest: string; sha256: string; hash: string; storePath: string;
  };
  await step('The same pin as a nixpkgs pullImage expression', ['pull', '--tls-verify=false', '--nix', ref], store);
  await step('Verify against the pin: the path is already valid, so nothing is fetched', [`${reg.host}/demo/hello@${pin.imageDigest}`, '--tls-verify=false', '--sha256', pin.sha256, '--final-image-tag', '1.0', '--final-image-name', `${reg.host}/demo/hello`], store);

  await step('A wrong pin fails as Nix does and registers nothing (exit 102)', [ref, '--tls-verify=false', '--final-image-tag', 'other', '--sha256', '0'.repeat(52)], store, 102);

  await reg.stop();
  console.log('\n(registry stopped: from here on there is no network)');
  await step('Fetch by pin with no registry at all', [ref, '--tls-verify=false', '--hash', pin.hash], store);
  await step('Audit: re-hash every path in the store', ['store', 'verify', '--check-contents'], store);
  await step('What the store records about the image', ['store', 'path-info', pin.storePath], store);
  console.log('\ndemo finished: the pin reproduced offline, byte for byte.');
} finally {
  await reg.stop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
}
