/**
 * A Servman deployment as users run one on any Redis topology: one `servman node` and some
 * `servman gateway` processes on the same configuration, echo instances launched through a
 * gateway, and clients spread over the gateways, each joined to one instance (client c to
 * instance c mod N). Used by the benchmarks that compare topologies (relay-cluster, failover).
 */
import { startServman, type ServmanProcess } from "./child-processes.js";
import { mapLimit } from "./concurrency.js";
import { processesBelow, survivors } from "./leftovers.js";
import { writeBenchConfig } from "./servman-config.js";
import { ServmanWire } from "./wire-client.js";

export interface DeploymentOptions {
  /** The `redis` value of the configuration: `redis://...`, `redis+cluster://...` or `redis+sentinel://...`. */
  redisUrl: string;
  gateways: number;
  instances: number;
  clients: number;
}

export interface Deployment {
  /** The configuration's prefix (to build key and channel names with src/keys.ts). */
  prefix: string;
  /** The node first, then the gateways. */
  processes: ServmanProcess[];
  /** Instance ids, in launch order. */
  instances: string[];
  /** Client c is joined to `instances[c % instances.length]`, through gateway c mod G. */
  clients: ServmanWire[];
  /** Every process id of the deployment: its servman processes and the instances below the node. */
  pids(): number[];
  /** Closes the clients, stops every process (a drain), and says what went wrong, if anything. */
  stop(): Promise<string[]>;
}

/** Starts the deployment; on a failure half-way, what was started is stopped before the error is thrown. */
export async function startDeployment(options: DeploymentOptions): Promise<Deployment> {
  const config = writeBenchConfig({ redisUrl: options.redisUrl, capacity: options.instances + 10 });
  const processes: ServmanProcess[] = [];
  const clients: ServmanWire[] = [];
  let owner: ServmanWire | undefined;
  const stop = async () => {
    const problems: string[] = [];
    await Promise.allSettled([...clients, ...(owner ? [owner] : [])].map((c) => c.close()));
    const below = processes.flatMap((p) => processesBelow(p.pid));
    // Gateways first, so the node's drain is not reported to connected clients.
    for (const p of [...processes].reverse()) {
      const code = await p.stop();
      if (code !== 0) problems.push(`pid ${p.pid} exited with ${code}`);
    }
    const left = survivors(below);
    if (left.length > 0) problems.push(`${left.length} of ${below.length} instance processes still running`);
    config.remove();
    return problems;
  };
  try {
    processes.push(await startServman(["node", "--config", config.path]));
    for (let g = 0; g < options.gateways; g++) processes.push(await startServman(["gateway", "--config", config.path, "--port", "0"]));
    const urls = processes.slice(1).map((p) => p.url!);
    owner = await ServmanWire.connect(urls[0]);
    const launcher = owner;
    const instances = await mapLimit(options.instances, 8, async () => String((await launcher.request({ type: "launch", task: "echo" })).instance));
    clients.push(...(await mapLimit(options.clients, 50, (c) => ServmanWire.connect(urls[c % urls.length]))));
    await mapLimit(options.clients, 50, (c) => clients[c].request({ type: "join", instance: instances[c % instances.length] }));
    return {
      prefix: config.prefix,
      processes,
      instances,
      clients,
      pids: () => [...processes.map((p) => p.pid), ...processesBelow(processes[0].pid).map((p) => p.pid)],
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
