// Run by test/sandbox-vm.test.ts: a vm stage that the parent interrupts with SIGTERM.
import { runRootStage, type RootStageRequest } from '../../lib/sandbox/index.js';

const req = JSON.parse(process.argv[2] ?? '') as RootStageRequest;
await runRootStage('vm', req);
console.log('finished (unexpected)');
