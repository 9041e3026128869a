import { runNamespaceStage } from './namespace/runner.js';
import { runVmRootStage } from './vm/index.js';
import { namespaceAccess } from './namespace/probe.js';
import { SandboxError, type RootStageRequest, type RootStageResult, type SandboxKind } from './types.js';

type Runner = (req: RootStageRequest) => Promise<RootStageResult>;

/** The runner of each sandbox; the VM runner (vm/) adds itself here. */
const RUNNERS: Partial<Record<SandboxKind, Runner>> = { namespace: runNamespaceStage, vm: (req) => runVmRootStage(req) };

export async function runRootStage(kind: SandboxKind, req: RootStageRequest): Promise<RootStageResult> {
  const runner = RUNNERS[kind];
  if (!runner) throw new SandboxError(`the ${kind} sandbox is not part of this build; use --sandbox namespace`);
  return runner(req);
}

/**
 * `auto`: the namespace sandbox when it works here (root, and a namespace with an overlay
 * mounts: probed once), else the VM. An explicit `namespace` that cannot work fails now, with
 * the reason and what to do instead.
 */
export async function chooseSandbox(requested: 'auto' | SandboxKind): Promise<SandboxKind> {
  if (requested === 'vm') return 'vm';
  const access = await namespaceAccess();
  if (access.ok) return 'namespace';
  if (requested === 'namespace') throw new SandboxError(access.reason);
  return 'vm';
}
