import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { MARK } from './guest-init.js';

export const QEMU = 'qemu-system-x86_64';
export type Accel = 'kvm' | 'tcg';

/** Where the guest is; named in timeout and failure messages. */
export type GuestStage = 'boot' | 'mount' | 'script' | 'collect' | 'done';
const STAGE_TEXT: Record<GuestStage, string> = {
  boot: 'booting the VM',
  mount: 'mounting the lower dirs, the upper disk and the store',
  script: 'running the script',
  collect: 'collecting the upper dir',
  done: 'powering off',
};
export const describeStage = (s: GuestStage): string => STAGE_TEXT[s];
const isStage = (s: string): s is GuestStage => Object.hasOwn(STAGE_TEXT, s);

export interface Share { tag: string; path: string; readonly: boolean }

export interface GuestConfig {
  kernel: string;
  initrd: string;
  accel: Accel;
  memoryMiB: number;
  mode: 'run' | 'probe';
  shares: Share[];
  disk?: string;            // raw image, the guest's /dev/vda
  network: boolean;
  outputSocket?: string;    // unix socket the guest's ttyS1 connects to (script output)
}

/** A value inside a QEMU -option list: commas are doubled. */
const opt = (s: string): string => s.replace(/,/g, ',,');

/** Slots per PCI bridge that carries 9p shares (the root bus keeps room for the rest). */
const BRIDGE_SLOTS = 31;

export function qemuArgs(c: GuestConfig): string[] {
  const args = [
    '-nographic', '-no-reboot', '-nodefaults', '-monitor', 'none', '-parallel', 'none',
    '-accel', c.accel, '-cpu', c.accel === 'kvm' ? 'host' : 'max', '-smp', '1', '-m', String(c.memoryMiB),
    '-kernel', c.kernel, '-initrd', c.initrd,
    '-append', `console=ttyS0 panic=-1 quiet loglevel=3 fetch_image.mode=${c.mode}`,
    '-serial', 'stdio',
  ];
  if (c.outputSocket) args.push('-chardev', `socket,id=out,path=${opt(c.outputSocket)}`, '-serial', 'chardev:out');
  args.push(...(c.network ? ['-nic', 'user,model=virtio-net-pci'] : ['-nic', 'none']));
  c.shares.forEach((s, i) => {
    const bridge = Math.floor(i / BRIDGE_SLOTS);
    if (i % BRIDGE_SLOTS === 0) args.push('-device', `pci-bridge,id=br${bridge},chassis_nr=${bridge + 1}`);
    args.push(
      '-fsdev', `local,id=fs${i},path=${opt(s.path)},security_model=none${s.readonly ? ',readonly=on' : ''}`,
      '-device', `virtio-9p-pci,fsdev=fs${i},mount_tag=${s.tag},bus=br${bridge},addr=${(i % BRIDGE_SLOTS) + 1}`,
    );
  });
  if (c.disk) args.push('-drive', `file=${opt(c.disk)},format=raw,if=virtio,cache=unsafe`);
  return args;
}

export interface GuestRun {
  stage: GuestStage;
  error?: string;           // the guest's own failure message
  exit: { code: number | null; signal: NodeJS.Signals | null };
  consoleTail: string[];
  timedOut: boolean;
  aborted: boolean;
}

export interface RunGuestOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** The script's output (the guest's second serial port), as it comes. */
  onOutput?: (chunk: Buffer) => void;
  onStage?: (stage: GuestStage) => void;
  qemu?: string;
  /** Prefix the QEMU command (e.g. a namespace wrapper); argv[0] of the result is run. */
  wrap?: (argv: string[]) => string[];
}

const CONSOLE_TAIL = 40;

/**
 * Boots the guest and waits until QEMU exits: the stage follows the markers /init prints on the
 * console, the script's output arrives on the second serial port. QEMU is killed on timeout
 * and on abort (the caller turns SIGINT/SIGTERM into an abort).
 */
export async function runGuest(config: GuestConfig, opts: RunGuestOptions): Promise<GuestRun> {
  let output: OutputServer | undefined;
  if (config.outputSocket) output = await listenForOutput(config.outputSocket, (b) => opts.onOutput?.(b));
  const argv = [opts.qemu ?? QEMU, ...qemuArgs(config)];
  const full = opts.wrap ? opts.wrap(argv) : argv;
  const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const run: GuestRun = { stage: 'boot', exit: { code: null, signal: null }, consoleTail: [], timedOut: false, aborted: false };
  const consoleLines = new LineSplitter((raw) => {
    const line = raw.replace(/\r/g, '').replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1bc/g, '');
    const at = line.indexOf(MARK);
    if (at >= 0) {
      const what = line.slice(at + MARK.length).trim();
      const stage = what.startsWith('stage:') ? what.slice(6) : undefined;
      if (stage !== undefined && isStage(stage)) run.stage = stage;
      else if (what === 'done' || what === 'ready') run.stage = 'done';
      else if (what.startsWith('error:')) run.error = what.slice(6);
      opts.onStage?.(run.stage);
      return;
    }
    if (line.trim() === '') return;
    run.consoleTail.push(line);
    if (run.consoleTail.length > CONSOLE_TAIL) run.consoleTail.shift();
  });
  child.stdout.on('data', (b: Buffer) => consoleLines.push(b));
  child.stderr.on('data', (b: Buffer) => consoleLines.push(b));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const timer = setTimeout(() => {
    run.timedOut = true;
    kill();
  }, opts.timeoutMs);
  const onAbort = (): void => {
    run.aborted = true;
    kill();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  try {
    run.exit = await new Promise((resolve, reject) => {
      child.once('error', (e) => reject(new Error(`cannot start ${full[0]}: ${e.message} (apt-get install qemu-system-x86)`)));
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
    kill();
    await output?.drained();
    output?.server.close();
  }
  consoleLines.end();
  return run;
}

interface OutputServer { server: Server; drained: () => Promise<void> }

function listenForOutput(path: string, onData: (b: Buffer) => void): Promise<OutputServer> {
  return new Promise((resolve, reject) => {
    const closed: Promise<void>[] = [];
    const server = createServer((sock: Socket) => {
      closed.push(new Promise((done) => sock.once('close', () => done())));
      sock.on('data', onData);
      sock.on('error', () => undefined);
    });
    server.once('error', reject);
    // QEMU's exit closes the connection; what it wrote last may still be on its way here.
    const drained = async (): Promise<void> => {
      await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 2000).unref())]);
    };
    server.listen(path, () => resolve({ server, drained }));
  });
}

/** Bytes in, complete lines out (the last partial line on end()). */
export class LineSplitter {
  private rest = '';
  private readonly decoder = new StringDecoder('utf8');
  constructor(private readonly onLine: (line: string) => void) {}
  push(chunk: Buffer): void {
    const text = this.rest + this.decoder.write(chunk);
    const parts = text.split('\n');
    this.rest = parts.pop() ?? '';
    for (const p of parts) this.onLine(p.replace(/\r$/, ''));
  }
  end(): void {
    this.rest += this.decoder.end();
    if (this.rest !== '') this.onLine(this.rest);
    this.rest = '';
  }
}
