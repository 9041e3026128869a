/**
 * Where long operations report how far they are. The CLI draws bars from it on a terminal; the
 * library never prints. Ids are stable per item (a URL, a layer digest).
 */
export interface ProgressSink {
  start(id: string, label: string, total?: number): void;
  update(id: string, done: number, total?: number): void;
  finish(id: string): void;
}

export const SILENT_PROGRESS: ProgressSink = { start() {}, update() {}, finish() {} };
