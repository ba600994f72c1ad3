/**
 * What an instance writes besides messages: its log lines (stderr, and stdout of `module` tasks),
 * kept briefly to explain a failed launch, and invalid output, which is dropped and logged with
 * a throttle so a service spewing garbage cannot flood the node's log.
 */
import type { Logger } from "pino";
import { TokenBucket } from "../src/token-bucket.js";
import { LineSplitter } from "./line-splitter.js";

/** Log lines kept per instance to explain a failed launch. */
const KEPT_LOG_LINES = 20;
const MAX_LOG_LINE = 16 * 1024;
/** Log lines per second an instance may have kept in Redis (bursts of five seconds' worth). */
const KEPT_LINES_PER_SECOND = 200;
/** Invalid service output logged line by line before logging turns into periodic summaries. */
const INVALID_LOGGED_FREELY = 5;
const INVALID_SUMMARY_MS = 10_000;

export class InstanceOutput {
  private readonly recent: string[] = [];
  private readonly invalid = { count: 0, logged: 0, lastSummary: 0 };
  private readonly keptLines = new TokenBucket(KEPT_LINES_PER_SECOND, KEPT_LINES_PER_SECOND * 5);
  private unkept = 0;

  constructor(
    private readonly logger: Logger,
    /** Called for each piece of invalid output (the node's counter). */
    private readonly countInvalid: () => void,
    /** Called for each log line (the node keeps them in Redis for `servman logs`). */
    private readonly sink: (source: string, text: string) => void = () => {},
  ) {}

  /** Logs every line of `stream`, with an upper bound on line length. */
  capture(stream: NodeJS.ReadableStream | null | undefined, source: "stderr" | "stdout"): void {
    if (!stream) return;
    const splitter = new LineSplitter({
      maxLineLength: MAX_LOG_LINE,
      onLine: (line) => this.line(source, line),
      onOversized: (length) => this.line(source, `[line of ${length}+ characters dropped]`),
    });
    stream.on("data", (chunk: Buffer) => splitter.push(chunk));
    stream.on("end", () => splitter.end());
  }

  /** Logs one line and keeps it among the recent ones. */
  line(source: string, text: string): void {
    this.logger.info({ source }, text);
    this.keep(source, text);
  }

  /**
   * Keeps one line among the recent ones and in the instance's log (Redis), without the node's
   * log: a shared host's own lines, which its node logs once for all its instances.
   */
  keep(source: string, text: string): void {
    this.recent.push(text);
    if (this.recent.length > KEPT_LOG_LINES) this.recent.shift();
    // Kept lines are rationed: a service printing in a loop must not flood Redis.
    if (this.keptLines.take()) {
      if (this.unkept > 0) this.sink("servman", `[${this.unkept} log lines not kept: over ${KEPT_LINES_PER_SECOND} lines per second]`);
      this.unkept = 0;
      this.sink(source, text);
    } else {
      this.unkept++;
    }
  }

  /** The last lines kept (for a post-mortem). */
  lastLines(): string[] {
    return [...this.recent];
  }

  /** The last few lines that say something, for a launch_failed message. */
  lastWords(): string {
    // Stack frames say little to whoever launched; the error lines above them say what went wrong.
    return this.recent
      .filter((line) => !/^\s+at /.test(line))
      .slice(-3)
      .join(" | ");
  }

  /** Something the service sent is not a valid message: counted, and logged with a throttle. */
  reportInvalid(problem: string): void {
    this.invalid.count++;
    this.countInvalid();
    const now = Date.now();
    if (this.invalid.logged < INVALID_LOGGED_FREELY) {
      this.invalid.logged++;
      this.logger.warn({ problem }, "invalid output from service dropped");
    } else if (now - this.invalid.lastSummary >= INVALID_SUMMARY_MS) {
      this.invalid.lastSummary = now;
      this.logger.warn({ problem, droppedSoFar: this.invalid.count }, "service keeps sending invalid output; dropping it");
    }
  }
}
