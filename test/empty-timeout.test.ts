/**
 * `emptyTimeoutMs` (docs/configuration.md#tasksname): an instance with no member for this long stops
 * (`stopped`). Client-launched instances have a default, backend-launched ones do not. The test
 * tasks `empty-echo` (300 ms) and `kept-echo` (0: off) come from test/helpers/cluster.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULTS, emptyTimeoutFor } from "../src/config/options.js";
import { loadConfig } from "../src/config/load-config.js";
import { ConfigError } from "../src/errors.js";
import { InstanceLogs } from "../src/registry/instance-logs.js";
import { Keys } from "../src/keys.js";
import { Launcher } from "../src/launcher/launcher.js";
import { ECHO_SERVICE, type RawClient, writeConfig } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { cut } from "./helpers/sessions.js";
import { useCluster } from "./helpers/use-cluster.js";

/** Longer than twice the test tasks' 300 ms: what a stopped-too-early instance would have needed. */
const OVER_TWICE_THE_TIMEOUT_MS = 700;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("emptyTimeoutMs", () => {
  it("defaults to a few minutes for client-launched instances and to off for backend launches; a task's own value applies to both", () => {
    assert.equal(emptyTimeoutFor({}, true), DEFAULTS.ownedEmptyTimeoutMs);
    assert.ok(DEFAULTS.ownedEmptyTimeoutMs > 0);
    assert.equal(emptyTimeoutFor({}, false), 0);
    assert.equal(emptyTimeoutFor({ emptyTimeoutMs: 0 }, true), 0);
    assert.equal(emptyTimeoutFor({ emptyTimeoutMs: 300 }, true), 300);
    assert.equal(emptyTimeoutFor({ emptyTimeoutMs: 300 }, false), 300);
  });

  it("is validated like the other task keys", () => {
    const load = (emptyTimeoutMs: unknown) => loadConfig({ config: writeConfig({ tasks: { t: { module: ECHO_SERVICE, emptyTimeoutMs } } }) }, { PATH: process.env.PATH });
    assert.equal(load(0).tasks.t.emptyTimeoutMs, 0);
    assert.equal(load(1500).tasks.t.emptyTimeoutMs, 1500);
    assert.equal(loadConfig({ config: writeConfig({ tasks: { t: { module: ECHO_SERVICE } } }) }, { PATH: process.env.PATH }).tasks.t.emptyTimeoutMs, undefined);
    for (const bad of [-1, 1.5, "300", 86_400_001]) assert.throws(() => load(bad), ConfigError, `emptyTimeoutMs ${JSON.stringify(bad)}`);
  });

  describe("on a cluster", () => {
    const fx = useCluster();
    const exists = async (instance: string) => (await fx.redis.client.exists(`{t}:instance:${instance}`)) === 1;
    const gone = (instance: string, what: string) => eventually(async () => !(await exists(instance)), what, 10_000);

    async function launch(owner: RawClient, task: string): Promise<string> {
      const launched = await owner.request({ type: "launch", task });
      assert.equal(launched.type, "launched", JSON.stringify(launched));
      return launched.instance as string;
    }

    it("stops a client-launched instance nobody joins, and its post-mortem says why", async () => {
      const owner = await fx.cluster.raw();
      const instance = await launch(owner, "empty-echo");
      await gone(instance, "the empty instance to stop");
      const postMortem = await new InstanceLogs(fx.redis.client, new Keys("t")).postMortem(instance);
      assert.ok(postMortem, "a post-mortem is kept");
      assert.equal(postMortem.reason, "stopped");
      assert.ok(
        postMortem.lastLines.some((line) => line.includes("stopped: empty for 300 ms")),
        JSON.stringify(postMortem.lastLines),
      );
      // The owner finds it gone like any stopped instance.
      assert.equal((await owner.request({ type: "stop", instance })).code, "unknown_instance");
    });

    it("keeps an instance while a member is joined, even a detached one, and stops it once the last member leaves", async () => {
      const owner = await fx.cluster.raw();
      const member = await fx.cluster.raw();
      const instance = await launch(owner, "empty-echo");
      // A join right after the launch cancels the countdown that began at ready.
      assert.equal((await member.request({ type: "join", instance })).type, "joined");
      await pause(OVER_TWICE_THE_TIMEOUT_MS);
      assert.ok(await exists(instance), "still running while joined");

      // A dropped connection leaves a detached session, still a member until its session ends.
      await cut(fx.cluster.gateways[0], member.session);
      await pause(OVER_TWICE_THE_TIMEOUT_MS);
      assert.ok(await exists(instance), "still running while its member's session waits to be resumed");
      const back = await fx.cluster.raw();
      const resumed = await back.request({ type: "resume", session: member.welcome.session, resume: member.welcome.resume });
      assert.deepEqual(resumed.instances, [instance]);

      // The last member leaves: the countdown starts again, and a second member's join cancels it.
      const other = await fx.cluster.raw();
      assert.equal((await back.request({ type: "leave", instance })).type, "left");
      assert.equal((await other.request({ type: "join", instance })).type, "joined");
      await pause(OVER_TWICE_THE_TIMEOUT_MS);
      assert.ok(await exists(instance), "a join cancelled the countdown");

      // Kicked (by the service, as it asked): nobody is left.
      other.send({ type: "send", instance, action: "kick-me" });
      assert.equal((await other.next((f) => f.type === "closed" && f.instance === instance)).reason, "kicked");
      await gone(instance, "the instance to stop once its last member was kicked");
    });

    it("keeps an instance whose task sets emptyTimeoutMs 0, and a backend's instance by default", async () => {
      const owner = await fx.cluster.raw();
      const launcher = new Launcher({ redis: fx.redis.url, prefix: "t" });
      try {
        const kept = await launch(owner, "kept-echo");
        const backend = await launcher.launch("echo");
        // A task's own value applies to backend launches too.
        const backendEmpty = await launcher.launch("empty-echo");
        const empty = await launch(owner, "empty-echo");
        await gone(empty, "the client's 300 ms instance to stop");
        await gone(backendEmpty.instance, "the backend's 300 ms instance to stop");
        await pause(OVER_TWICE_THE_TIMEOUT_MS);
        assert.ok(await exists(kept), "emptyTimeoutMs 0 keeps it");
        assert.ok(await exists(backend.instance), "no default for a backend's launch");
        assert.equal((await owner.request({ type: "stop", instance: kept })).type, "stopped");
        await launcher.stop(backend.instance);
      } finally {
        await launcher.close();
      }
    });
  });
});
