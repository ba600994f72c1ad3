/**
 * Property-based fuzzing of a gateway's HTTP side (fast-check): random request targets (the class
 * of input that once ended every gateway: `GET //`), methods, Host headers, and admin API bodies
 * that are deep, wide, ill-formed or not JSON. Every request gets an HTTP answer (or its socket
 * closed), and after each batch the gateway still serves `/healthz` and a WebSocket client.
 * FUZZ_RUNS raises the count (`npm run fuzz`).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { rawRequest } from "./helpers/raw-http.js";
import { useCluster } from "./helpers/use-cluster.js";
import { testTasks } from "./helpers/cluster.js";
import { hostilePayload } from "./helpers/hostile-json.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** Request targets: paths, absolute forms, authority forms, escapes and garbage. */
const target: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "/",
    "//",
    "//x:99999/",
    "http://[::1/",
    "//@/v1/nodes",
    "*",
    "/v1/instances/%",
    "/v1/instances/%E0%A4%A",
    "/v1/instances/..%2F..",
    "/healthz?x=%zz",
    "http://gateway/healthz",
    "/v1/instances/" + "a".repeat(5000),
    "/\u00e9t\u00e9",
  ),
  fc.webPath(),
  fc.webUrl(),
  fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 200 }).map((s) => s.replace(/[\s]/g, "x")),
  fc.string({ unit: "binary", minLength: 1, maxLength: 50 }).map((s) => "/" + encodeURIComponent(s)),
);

const method = fc.constantFrom("GET", "POST", "DELETE", "PUT", "HEAD", "OPTIONS", "PATCH");
const host = fc.constantFrom("127.0.0.1", "localhost", "evil.example", "", "[::1]", "127.0.0.1:1");
const body = fc.oneof(hostilePayload, fc.constantFrom("", "{", "null", '{"task":"nope"}', '{"sub":"\\ud800"}'));

describe("fuzzing the HTTP side", () => {
  const fx = useCluster({ extra: { tasks: testTasks() } });

  it(`gateway: ${RUNS} random request targets, hosts and bodies each get an answer, and it stays up`, async () => {
    const gateway = fx.cluster.gateways[0];
    const port = Number(new URL(gateway.url).port);
    const good = await fx.cluster.raw();
    await fc.assert(
      fc.asyncProperty(method, target, host, body, async (m, t, h, b) => {
        const hostLine = h === "" ? "" : `Host: ${h}\r\n`;
        const withBody = m === "POST" || m === "PUT" || m === "PATCH";
        const bodyBytes = Buffer.byteLength(b);
        const head = `${m} ${t} HTTP/1.1\r\n${hostLine}Connection: close\r\n${withBody ? `Content-Type: application/json\r\nContent-Length: ${bodyBytes}\r\n` : ""}\r\n`;
        const response = await rawRequest(port, head + (withBody ? b : ""));
        // An answer with a status, or the socket closed by Node's HTTP parser (a 400 of its own).
        assert.ok(response.status === 0 || (response.status >= 200 && response.status < 600), `status ${response.status} for ${m} ${t.slice(0, 80)}`);
        assert.notEqual(response.status, 500, `internal error for ${m} ${t.slice(0, 80)}: ${response.body.slice(0, 200)}`);
        const health = await rawRequest(port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        assert.equal(health.status, 200, "the gateway still answers /healthz");
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 42) },
    );
    assert.equal((await good.request({ type: "ping" })).type, "pong", "a WebSocket client is still served");
  });
});
