#!/usr/bin/env node
// `servman-node [options]` is `servman node [options]`.
globalThis.servmanBinCommand = "node";
await import("./servman.js");
