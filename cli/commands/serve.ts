/**
 * `servman start | gateway | node`: the long-running roles. SIGTERM or SIGINT drains under a
 * deadline (a second signal closes at once); the process exits 0 once everything is closed.
 */
import type { Logger } from "pino";
import { Gateway } from "../../gateway/gateway.js";
import { assertServable } from "../../gateway/servable.js";
import { ServmanNode } from "../../nodes/servman-node.js";
import type { ServmanConfig } from "../../src/config/options.js";
import { checkRedis } from "../../src/redis-connection.js";

interface Closable {
  drain(deadlineMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Extra time the process waits beyond the drain deadline before it exits anyway. */
const EXIT_GRACE_MS = 5_000;
/** How long a draining gateway waits for clients to close after 1001 before it cuts them off. */
const CLIENT_CLOSE_WAIT_MS = 2_000;

export async function serve(role: "start" | "gateway" | "node", config: ServmanConfig, logger: Logger): Promise<number> {
  if (role !== "node") assertServable(config);
  await checkRedis(config.redis);
  const parts: Closable[] = [];
  let gateway: Gateway | undefined;
  let node: ServmanNode | undefined;
  try {
    if (role !== "gateway") {
      if (Object.keys(config.tasks).length === 0) logger.warn({ config: config.file }, 'this node offers no tasks: add some under "tasks" in the configuration');
      node = new ServmanNode({ config, logger });
      await node.start();
      parts.push(node);
    }
    if (role !== "node") {
      gateway = new Gateway({ config, logger });
      // The gateway drains first: clients stop sending before their instances are shut down.
      parts.unshift(gateway);
      await gateway.listen();
    }
  } catch (err) {
    await Promise.allSettled(parts.map((p) => p.close()));
    throw err;
  }
  const what = [
    gateway ? `clients connect to ${gateway.url}` : null,
    node ? `node ${node.id} runs ${Object.keys(config.tasks).join(", ") || "no tasks"} (capacity ${config.node.capacity})` : null,
  ].filter(Boolean);
  process.stderr.write(`servman ${role}: ${what.join("; ")}. Ctrl-C to stop.\n`);

  return new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        logger.warn({ signal }, "second signal: closing now");
        void Promise.allSettled(parts.map((p) => p.close())).then(() => resolve(1));
        return;
      }
      logger.info({ signal }, "draining");
      const deadline = config.node.shutdownDeadlineMs;
      // Clients only need to see 1001 and go; the instances get the whole deadline.
      const clientWait = Math.min(CLIENT_CLOSE_WAIT_MS, deadline);
      const budget = (gateway ? clientWait : 0) + (node ? deadline : 0) + EXIT_GRACE_MS;
      setTimeout(() => {
        logger.error({ budgetMs: budget }, "drain did not finish in time; closing now");
        void Promise.allSettled(parts.map((p) => p.close())).then(() => resolve(1));
      }, budget).unref();
      void (async () => {
        for (const part of parts) {
          await part.drain(part === gateway ? clientWait : deadline).catch((err: Error) => logger.error({ err }, "drain failed"));
        }
        resolve(0);
      })();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    // `servman drain NODE` drains the node through Redis: the process then ends as on SIGTERM.
    void node?.closed.then(async () => {
      if (signals > 0) return;
      await gateway?.drain(CLIENT_CLOSE_WAIT_MS);
      resolve(0);
    });
    // SIGHUP: renewed certificates are served to new connections; open ones are not dropped.
    process.on("SIGHUP", () => {
      if (!gateway || !config.gateway.tls) return logger.info("SIGHUP ignored: no TLS to reload");
      try {
        gateway.reloadTls();
      } catch (err) {
        logger.error({ err }, "TLS reload failed; keeping the current certificate");
      }
    });
  });
}
