/** Bounded line splitting (nodes/line-splitter.ts), fed by hand: no process, no Redis. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LineSplitter } from "../nodes/line-splitter.js";

function splitter(maxLineLength: number): { s: LineSplitter; lines: string[]; oversized: number[] } {
  const lines: string[] = [];
  const oversized: number[] = [];
  const s = new LineSplitter({ maxLineLength, onLine: (l) => lines.push(l), onOversized: (n) => oversized.push(n) });
  return { s, lines, oversized };
}

describe("LineSplitter", () => {
  it("delivers complete lines in order, joining lines split across chunks", () => {
    const { s, lines } = splitter(100);
    s.push("one\ntw");
    assert.deepEqual(lines, ["one"]);
    s.push("o\nthree\n\nfour");
    assert.deepEqual(lines, ["one", "two", "three", ""]);
    s.end();
    assert.deepEqual(lines, ["one", "two", "three", "", "four"], "the last line without a newline, at the end");
  });

  it("strips the carriage return of CRLF lines", () => {
    const { s, lines } = splitter(100);
    s.push(Buffer.from("a\r\nb\r\n"));
    assert.deepEqual(lines, ["a", "b"]);
  });

  it("decodes UTF-8 split between chunks", () => {
    const { s, lines } = splitter(100);
    const bytes = Buffer.from("héllo ✓\n");
    for (const byte of bytes) s.push(Buffer.from([byte]));
    assert.deepEqual(lines, ["héllo ✓"]);
  });

  it("keeps a line of exactly the limit, drops a longer one and reports it once", () => {
    const { s, lines, oversized } = splitter(5);
    s.push("12345\n123456\nok\n");
    assert.deepEqual(lines, ["12345", "ok"]);
    assert.deepEqual(oversized, [6]);
  });

  it("an endless line is dropped as soon as it passes the limit, without buffering the rest", () => {
    const { s, lines, oversized } = splitter(10);
    s.push("x".repeat(8));
    s.push("x".repeat(8));
    assert.deepEqual(oversized, [16], "reported when the buffer passed the limit");
    for (let i = 0; i < 1000; i++) s.push("x".repeat(1000));
    assert.deepEqual(oversized, [16], "the rest of that line is skipped, not reported again");
    s.push("tail\nnext\n");
    assert.deepEqual(lines, ["next"], "the end of the oversized line is skipped with it");
  });

  it("end() drops an unfinished line past the limit and a skipped line's rest", () => {
    const long = splitter(3);
    long.s.push("abcd");
    long.s.end();
    assert.deepEqual(long.lines, []);
    const fine = splitter(3);
    fine.s.push("abc");
    fine.s.end();
    assert.deepEqual(fine.lines, ["abc"]);
  });
});
