#!/usr/bin/env node
// Entry point of the `servman` command; the program itself is compiled to dist/ by `npm install`.
import { existsSync } from "node:fs";

const main = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(main)) {
  process.stderr.write("servman: not built yet. Run `npm install` (it compiles the TypeScript) in the servman folder.\n");
  process.exit(2);
}
const { main: run } = await import(main.href);
// bin/servman-node.js sets the command; `servman-node --capacity 4` is `servman node --capacity 4`.
const command = globalThis.servmanBinCommand ? [globalThis.servmanBinCommand] : [];
process.exitCode = await run([...command, ...process.argv.slice(2)]);
