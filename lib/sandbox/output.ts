import { OUTPUT_TAIL_LINES } from './types.js';

/**
 * Splits a child's output into lines for onOutput and keeps the last few for the failure
 * message. Bytes are decoded as UTF-8 per line, so a character split across chunks survives.
 */
export class OutputTail {
  private partial: Buffer = Buffer.alloc(0);
  private readonly tail: string[] = [];

  constructor(private readonly onLine?: (line: string) => void) {}

  push(chunk: Buffer): void {
    let data = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a)) {
      this.line(data.subarray(0, nl).toString('utf8'));
      data = data.subarray(nl + 1);
    }
    this.partial = Buffer.from(data);
  }

  /** The output so far, with an unterminated last line. */
  end(): string[] {
    if (this.partial.length) this.line(this.partial.toString('utf8'));
    this.partial = Buffer.alloc(0);
    return [...this.tail];
  }

  private line(text: string): void {
    this.tail.push(text);
    if (this.tail.length > OUTPUT_TAIL_LINES) this.tail.shift();
    this.onLine?.(text);
  }
}
