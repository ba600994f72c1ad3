/**
 * A heartbeat pair from the command line, against a running gateway:
 *   node dist/examples/heartbeat/client.js [ws://127.0.0.1:8080/v1/connect] [pings]
 */
import { HeartbeatClient } from "./heartbeat-client.js";

const url = process.argv[2] ?? "ws://127.0.0.1:8080/v1/connect";
const pings = Number(process.argv[3] ?? 10);
const client = new HeartbeatClient(url);
await client.connect();
const result = await client.run({ pings, intervalMs: 200 });
await client.close();
const rtts = result.rtts.map((ms) => ms.toFixed(2)).join(" ");
process.stdout.write(result.error === null ? `ok: ${pings} pongs, rtt ms: ${rtts}\n` : `failed: ${result.error}\n`);
process.exitCode = result.error === null ? 0 : 1;
