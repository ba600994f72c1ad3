/**
 * The client SDK in a browser (docs/resume.md#a-page-reload): `servman/client` bundles for the
 * browser without Node modules (esbuild, the `browser` condition), and in a real Chromium a page
 * that saved its session in sessionStorage takes it back after `page.reload()`: still joined,
 * still receiving, its sends still numbered, and the service never saw a leave.
 *
 * Chromium is Debian's (`apt-get install chromium`, which .ci/run does); without
 * /usr/bin/chromium the page test is skipped, saying so.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import { build, stop } from "esbuild";
import { chromium } from "playwright-core";
import { ROOT } from "./helpers/cluster.js";
import { useCluster } from "./helpers/use-cluster.js";

const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** `servman/client` bundled for a browser page, as an app's bundler would (by package name). */
async function bundle(): Promise<{ text: string; inputs: string[]; imports: string[] }> {
  const result = await build({
    stdin: { contents: 'export { ServmanClient } from "servman/client";', resolveDir: ROOT, sourcefile: "page-entry.js" },
    bundle: true,
    platform: "browser",
    format: "esm",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  // esbuild's service process is this test's child: ended, not left running.
  await stop();
  const output = Object.values(result.metafile.outputs)[0];
  return { text: result.outputFiles[0].text, inputs: Object.keys(result.metafile.inputs), imports: output.imports.map((i) => i.path) };
}

/**
 * The page: connects (resuming the session sessionStorage holds, if any), joins `instance` the
 * first time, and saves `client.resumeState()` after every event and send, and on pagehide.
 */
const PAGE = `<!doctype html><meta charset="utf-8"><title>servman</title><script type="module">
import { ServmanClient } from "/client.js";
const params = new URLSearchParams(location.search);
const instance = params.get("instance");
const saved = sessionStorage.getItem("servman");
const client = new ServmanClient(params.get("gw"), saved ? { resume: JSON.parse(saved) } : {});
const save = () => sessionStorage.setItem("servman", JSON.stringify(client.resumeState()));
window.shouts = [];
window.events = [];
client.handle("shout", (_i, data) => { window.shouts.push(data.data); save(); });
for (const e of ["resumed", "reset", "sendsLost", "closed"]) client.on(e, (...args) => window.events.push([e, ...args.map(String)]));
window.note = (data) => { client.send(instance, "note", data); save(); };
addEventListener("pagehide", save);
window.connected = await client.connect();
if (!saved) await client.join(instance);
save();
window.ready = true;
</script>`;

/** Serves the page and the bundle on 127.0.0.1. */
async function servePage(script: string): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/client.js") res.writeHead(200, { "content-type": "text/javascript" }).end(script);
    else if (path === "/") res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe("the client SDK in a browser", () => {
  const fx = useCluster({ gateways: 1, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 30_000 } } });

  it("bundles for the browser with no Node module and no ws", async () => {
    const { text, inputs, imports } = await bundle();
    assert.deepEqual(imports, [], "nothing left for the page to import");
    assert.deepEqual(
      inputs.filter((i) => i.includes("node_modules")),
      [],
      "no package is bundled",
    );
    assert.ok(
      inputs.some((i) => i.endsWith("websocket-impl.browser.js")),
      inputs.join(", "),
    );
    assert.doesNotMatch(text, /["']node:|from\s*["']ws["']|import\(\s*["']ws["']\)|require\(\s*["']ws["']\)/);
  });

  it("a page reload resumes the session saved in sessionStorage", { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install chromium` }, async () => {
    const shouter = await fx.cluster.raw(0);
    const { instance } = await shouter.request({ type: "launch", task: "echo", join: true }, 30_000);
    const { server, origin } = await servePage((await bundle()).text);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(String(err)));
      await page.goto(`${origin}/?gw=${encodeURIComponent(fx.cluster.gateways[0].url)}&instance=${instance}`);
      await page.waitForFunction(() => (window as any).ready === true, null, { timeout: 20_000 });
      const first = (await page.evaluate(() => (window as any).connected)) as { session: string; resumed: boolean };
      assert.equal(first.resumed, false);
      await page.evaluate(() => (window as any).note("before the reload"));
      shouter.send({ type: "send", instance, action: "shout", data: 1 });
      await page.waitForFunction(() => (window as any).shouts.length === 1, null, { timeout: 20_000 });

      await page.reload();
      await page.waitForFunction(() => (window as any).ready === true, null, { timeout: 20_000 });
      const second = (await page.evaluate(() => (window as any).connected)) as { session: string; resumed: boolean };
      assert.deepEqual(second, { ...first, resumed: true }, "the same session, resumed");
      assert.deepEqual(await page.evaluate(() => (window as any).events), [["resumed", instance, fx.cluster.gateways[0].id]]);
      shouter.send({ type: "send", instance, action: "shout", data: 2 });
      await page.waitForFunction(() => (window as any).shouts.length === 1, null, { timeout: 20_000 });
      assert.deepEqual(await page.evaluate(() => (window as any).shouts), [2], "the new page keeps receiving");
      await page.evaluate(() => (window as any).note("after the reload"));
      shouter.send({ type: "send", instance, action: "notesSoFar" });
      assert.deepEqual((await shouter.next((f) => f.action === "notes")).data, ["before the reload", "after the reload"]);
      shouter.send({ type: "send", instance, action: "leavesSoFar" });
      assert.deepEqual((await shouter.next((f) => f.action === "leaves")).data.leaves, [], "the service never saw a leave");
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await new Promise((resolve) => server.close(resolve));
    }
    assert.equal((await shouter.request({ type: "stop", instance })).type, "stopped");
  });
});
