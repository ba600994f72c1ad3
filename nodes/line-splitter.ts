/**
 * Splits a byte stream into lines with a bound on line length, so a process that writes an endless
 * line cannot grow its node's memory: the oversized line is dropped and reported instead.
 */
import { StringDecoder } from "node:string_decoder";

export interface LineSplitterOptions {
  /** Longest line kept, in characters. */
  maxLineLength: number;
  onLine(line: string): void;
  /** Called once per dropped line with how long it had grown when it was dropped. */
  onOversized(length: number): void;
}

export class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private buffer = "";
  /** True while skipping the rest of an oversized line. */
  private skipping = false;

  constructor(private readonly options: LineSplitterOptions) {}

  /** Feeds a chunk; complete lines are delivered synchronously, in order. */
  push(chunk: Buffer | string): void {
    let text = typeof chunk === "string" ? chunk : this.decoder.write(chunk);
    let newline = text.indexOf("\n");
    while (newline !== -1) {
      const piece = text.slice(0, newline);
      text = text.slice(newline + 1);
      if (this.skipping) {
        this.skipping = false;
      } else {
        const line = this.buffer + piece;
        this.buffer = "";
        if (line.length > this.options.maxLineLength) this.options.onOversized(line.length);
        else this.options.onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
      }
      newline = text.indexOf("\n");
    }
    if (this.skipping) return;
    this.buffer += text;
    if (this.buffer.length > this.options.maxLineLength) {
      this.options.onOversized(this.buffer.length);
      this.buffer = "";
      this.skipping = true;
    }
  }

  /** Delivers what is left after the stream ended (a last line without a newline). */
  end(): void {
    const rest = this.buffer + this.decoder.end();
    this.buffer = "";
    if (!this.skipping && rest.length > 0 && rest.length <= this.options.maxLineLength) this.options.onLine(rest);
    this.skipping = false;
  }
}
