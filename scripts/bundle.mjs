// Builds the shipped CLI, dist/bin/fetch-image.js, with esbuild from the TypeScript sources.
// Node spends ~60 ms resolving and loading the few hundred files of an unbundled run (our
// modules, yargs, undici); one bundle split into per-command chunks loads what a command needs
// in a handful of reads. tsc's dist/ stays as it is for the tests that import modules.
// Native addons stay external (loaded from node_modules at run time); so does cli-progress,
// which cli/progress.ts requires only on a terminal.
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * yargs measures help text with string-width (three copies: its own, cliui's, wrap-ansi's), whose
 * module set-up builds Intl.Segmenters and Unicode-property regexes (`\p{RGI_Emoji}` alone takes
 * ~10 ms): ~20 ms of every command's start-up, needed only to print help. Each import of it gets
 * a stand-in that loads the real module on the first call; esbuild turns that require() into a
 * lazy initialiser, so nothing of it runs until help is shown.
 */
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData === 'real') return undefined;
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'real' });
      if (real.errors.length) return { errors: real.errors };
      return { path: real.path, namespace: 'lazy-string-width' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
      contents: `export default function stringWidth(string, options) { return require(${JSON.stringify(args.path)}).default(string, options); }`,
      resolveDir: dirname(args.path),
      loader: 'js',
    }));
  },
};
const out = join(root, 'dist/bin');

// Chunk names are content hashes: without this, every rebuild would leave the old ones behind.
rmSync(out, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: {
    'fetch-image': 'cli/main.ts',
    // Workers are started as `new URL('./<name>.js', import.meta.url)` from whichever chunk holds
    // their caller: every chunk sits in dist/bin, so each worker is an entry of the same name there.
    'growing-file-hasher-worker': 'lib/nar/growing-file-hasher-worker.ts',
    'dump-worker': 'lib/nar/dump-worker.ts',
  },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: 'chunk-[hash]',
  external: ['@mongodb-js/zstd', 'lzma-native', 'cli-progress'],
  // CommonJS dependencies (undici, tar's helpers) call require() for Node's own modules.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  minifySyntax: true,
  minifyWhitespace: true,
  legalComments: 'linked',
  sourcemap: 'linked',
  logLevel: 'warning',
  plugins: [lazyStringWidth],
});
chmodSync(join(out, 'fetch-image.js'), 0o755);
