/** The gateway's HTTP side (docs/http-api.md): health, metrics and the admin API. */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { useCluster } from "./helpers/use-cluster.js";
import { eventually } from "./helpers/processes.js";

describe("HTTP API", () => {
  const fx = useCluster();
  let base: string;

  before(() => {
    base = fx.cluster.gateways[0].url.replace("ws://", "http://").replace("/v1/connect", "");
  });

  async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(base + path, {
      method,
      ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body), headers: { "content-type": "application/json" } } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text.startsWith("{") ? JSON.parse(text) : text };
  }

  it("GET /healthz is 200 while serving", async () => {
    assert.deepEqual(await call("GET", "/healthz"), { status: 200, json: { status: "ok" } });
  });

  it("GET /metrics is Prometheus text with the gateway's counters", async () => {
    const client = await fx.cluster.raw();
    await client.request({ type: "ping" });
    await client.request({ type: "dance" });
    const { status, json: text } = await call("GET", "/metrics");
    assert.equal(status, 200);
    assert.match(text, /^servman_gateway_connections 1$/m);
    assert.match(text, /^servman_gateway_requests_total\{type="ping"\} 1$/m);
    assert.match(text, /^servman_gateway_errors_total\{code="unknown_type"\} 1$/m);
    await client.close();
  });

  it("launches, lists, shows and stops instances", async () => {
    const created = await call("POST", "/v1/instances", { task: "echo", instance: "via-http", args: { a: 1 } });
    assert.deepEqual(created, { status: 201, json: { instance: "via-http", node: fx.cluster.nodes[0].id } });
    const list = await call("GET", "/v1/instances");
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.json.instances.map((r: any) => [r.instance, r.task, r.state]),
      [["via-http", "echo", "ready"]],
    );
    const one = await call("GET", "/v1/instances/via-http");
    assert.equal(one.json.node, fx.cluster.nodes[0].id);
    assert.deepEqual(await call("DELETE", "/v1/instances/via-http"), { status: 200, json: { instance: "via-http", stopped: true } });
    assert.equal((await call("GET", "/v1/instances/via-http")).status, 404);
  });

  it("lists nodes", async () => {
    // The node record's `running` is written by its heartbeat (every 2 s): the instance the test
    // before stopped leaves it at 1 until the next beat.
    let nodes: unknown[] = [];
    await eventually(async () => {
      const { status, json } = await call("GET", "/v1/nodes");
      assert.equal(status, 200);
      nodes = json.nodes.map((n: any) => [n.id, n.running, n.capacity]);
      return (nodes[0] as unknown[] | undefined)?.[1] === 0;
    }, "the node's heartbeat to count no running instance");
    assert.deepEqual(nodes, [[fx.cluster.nodes[0].id, 0, 20]]);
  });

  it("answers errors as JSON with the code's status", async () => {
    const cases: [string, string, unknown, number, string][] = [
      ["POST", "/v1/instances", "{nope", 400, "bad_request"],
      ["POST", "/v1/instances", { task: 5 }, 400, "bad_request"],
      ["POST", "/v1/instances", { task: "missing" }, 404, "unknown_task"],
      ["POST", "/v1/instances", { task: "echo", args: { failStart: true } }, 502, "launch_failed"],
      ["POST", "/v1/instances", { task: "echo", options: { timeoutMs: "soon" } }, 400, "bad_request"],
      ["POST", "/v1/instances", "x".repeat(1024 * 1024 + 10), 413, "too_large"],
      ["GET", "/v1/instances/ghost", undefined, 404, "unknown_instance"],
      ["DELETE", "/v1/instances/ghost", undefined, 404, "unknown_instance"],
      ["GET", "/v1/instances/bad%3Aid", undefined, 400, "bad_request"],
      ["GET", "/v1/instances/%E0", undefined, 400, "bad_request"],
      ["POST", "/v1/tickets", {}, 503, "unavailable"],
      ["GET", "/v1/nowhere", undefined, 404, "unknown_type"],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await call(method, path, body);
      assert.equal(res.status, status, `${method} ${path}: ${JSON.stringify(res.json)}`);
      assert.equal(res.json.error.code, code, `${method} ${path}`);
      assert.equal(typeof res.json.error.message, "string");
    }
    const form = await fetch(base + "/v1/instances", { method: "POST", body: "task=echo", headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(form.status, 400, "a cross-site form post is refused");
    const metrics = await (await fetch(base + "/metrics")).text();
    assert.match(metrics, /^servman_gateway_launches_total\{result="launch_failed"\} 1$/m);
    const dup = await call("POST", "/v1/instances", { task: "echo", instance: "twice" });
    assert.equal(dup.status, 201);
    assert.equal((await call("POST", "/v1/instances", { task: "echo", instance: "twice" })).status, 409);
    await call("DELETE", "/v1/instances/twice");
  });

  it("refuses WebSocket upgrades on other paths", async () => {
    const res = await fetch(base + "/elsewhere", { headers: { connection: "upgrade", upgrade: "websocket" } }).catch((e) => e);
    assert.ok(!(res instanceof Response) || res.status === 404);
  });
});
