// `fetch-image build --check` (as nix-build --check) and the audit's rebuild check: a build whose
// extraCommands write the clock into a file is caught (exit 104, the file named, the first
// differing byte), a deterministic one reproduces (exit 0); --keep-failed keeps the second output.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI_PATH } from './helpers/cli.js';
import { run } from './helpers/run.js';
import { tempDir } from './helpers/tmp.js';

const env = { PATH: process.env.PATH, HOME: process.env.HOME };

interface Report { items: { kind: string; name: string; firstDifferingOffset?: number; inner?: Report }[] }

/** Every changed member name, nested reports included (the layer inside the archive). */
function changedNames(r: Report, prefix = ''): string[] {
  return r.items.flatMap((i) => (i.kind === 'changed' ? [`${prefix}${i.name}`, ...(i.inner ? changedNames(i.inner, `${prefix}${i.name}/`) : [])] : []));
}

test('build --check: non-deterministic → 104 with the file named; deterministic → 0; audit rebuild the same', async () => {
  const t = tempDir();
  try {
    const store = join(t.path, 'store');
    const fi = (args: string[]) => run('node', [CLI_PATH, '--store', store, ...args], { env, cwd: t.path });
    mkdirSync(join(t.path, 'root/etc'), { recursive: true });
    writeFileSync(join(t.path, 'root/etc/motd'), 'hello\n');
    writeFileSync(join(t.path, 'stable.json'), JSON.stringify({ name: 'stable', copyToRoot: ['./root'], compressor: 'none' }));
    writeFileSync(join(t.path, 'clock.json'), JSON.stringify({ name: 'clock', copyToRoot: ['./root'], compressor: 'none', extraCommands: 'date +%s%N > etc/build-stamp' }));
    const unbuilt = await fi(['build', '--check', 'clock.json']);
    assert.is(unbuilt.code, 1);
    assert.match(unbuilt.stderr, /is not valid, so checking is not possible: build clock\.json first/);

    const locked = await fi(['lock', '--spec', 'stable.json', '--spec', 'clock.json', '--lock', 'builds.lock.json']);
    assert.is(locked.code, 0, locked.stderr);

    const stable = await fi(['build', '--check', 'stable.json']);
    assert.is(stable.code, 0, stable.stderr);
    assert.match(stable.stdout.toString(), /rebuilt bit for bit/);

    const clock = await fi(['build', '--check', '--json', '--keep-failed', 'clock.json']);
    assert.is(clock.code, 104, clock.stderr);
    const out = JSON.parse(clock.stdout.toString()) as { deterministic: boolean; report: Report; kept: string };
    assert.is(out.deterministic, false);
    assert.ok(changedNames(out.report).some((n) => n.endsWith('etc/build-stamp')), JSON.stringify(changedNames(out.report)));
    assert.ok(existsSync(out.kept), 'the second output is kept');
    const text = await fi(['build', '--check', 'clock.json']);
    assert.is(text.code, 104);
    assert.match(text.stderr, /^error: derivation '\/nix\/store\/[0-9a-z]{32}-docker-image-clock\.tar\.recipe\.json' may not be deterministic: output '\/nix\/store\/[0-9a-z]{32}-docker-image-clock\.tar' differs$/m);
    assert.match(text.stdout.toString(), /changed  etc\/build-stamp: .*first difference at byte \d+/);

    const audit = await fi(['audit', '--json', '--checks', 'drift,rebuild,store', 'builds.lock.json']);
    const results = (JSON.parse(audit.stdout.toString()) as { results: { entry: string; check: string; verdict: string }[] }).results;
    assert.is(audit.code, 104, audit.stderr + JSON.stringify(results));
    assert.equal(results.map((r) => `${r.entry} ${r.check} ${r.verdict}`), [
      'clock.json drift ok', 'clock.json rebuild not-deterministic', 'clock.json store ok',
      'stable.json drift ok', 'stable.json rebuild ok', 'stable.json store ok',
    ]);
    writeFileSync(join(t.path, 'stable.json'), JSON.stringify({ name: 'stable', copyToRoot: ['./root'], compressor: 'none', tag: 'v2' }));
    const drifted = await fi(['audit', '--json', '--checks', 'drift', 'builds.lock.json']);
    assert.is(drifted.code, 1);
    assert.match(drifted.stdout.toString(), /stable\.json changed since it was locked/);
  } finally {
    t.remove();
  }
});

test.run();
