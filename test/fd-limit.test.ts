/** Near its open-file limit a gateway refuses new connections with a clear error; nothing drops en masse. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { WebSocket } from "ws";
import { CLI, ROOT, RawClient, testTasks, writeConfig } from "./helpers/cluster.js";
import { cliEnv, freePort } from "./helpers/cli.js";
import { descendants, eventually } from "./helpers/processes.js";
import { startRedis } from "./helpers/redis-server.js";

describe("open-file limit", () => {
  it("a gateway under ulimit -n 200 refuses the connections past it, with the fix in its log", async () => {
    const redis = await startRedis();
    const port = await freePort();
    const config = writeConfig({ redis: redis.url, gateway: { port }, node: { capacity: 50 }, tasks: testTasks() });
    // The limit is lowered for this process alone, through the shell's ulimit builtin.
    const child = spawn("bash", ["-c", `ulimit -n 200 && exec "${process.execPath}" "${CLI}" start --config "${config}"`], { cwd: ROOT, env: cliEnv(), stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const clients: RawClient[] = [];
    try {
      await eventually(() => /Ctrl-C to stop/.test(stderr), "the server to start");
      assert.match(stderr, /open-file limit \(200\)/, "the node warns at startup that its capacity does not fit");
      let refused: { frame: any; code: number } | null = null;
      for (let i = 0; i < 250 && refused === null; i++) {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/connect`);
        const outcome = await new Promise<"open" | { frame: any; code: number }>((resolve) => {
          let frame: any = null;
          ws.on("message", (d) => {
            frame = JSON.parse(String(d));
            if (frame.type === "welcome") resolve("open");
          });
          ws.on("close", (code) => resolve({ frame, code }));
          ws.on("error", () => {});
        });
        if (outcome === "open") clients.push(new RawClient(ws));
        else refused = outcome;
      }
      assert.ok(refused, "a connection was refused before the limit");
      assert.equal(refused.code, 1008);
      assert.equal(refused.frame.code, "unavailable");
      assert.ok(clients.length > 10 && clients.length < 200, `${clients.length} connections were accepted`);
      await eventually(() => /ulimit -n/.test(stderr), "the log to say how to raise the limit");
      // The connections already open keep working.
      for (const c of clients.slice(0, 5)) assert.equal((await c.request({ type: "ping" })).type, "pong");
    } finally {
      for (const c of clients) c.ws.terminate();
      if (child.exitCode === null) {
        const closed = new Promise((r) => child.once("close", r));
        child.kill("SIGTERM");
        await closed;
      }
      await redis.stop();
    }
    assert.deepEqual(descendants(), []);
  });
});
