/**
 * The gateway's Prometheus metrics (GET /metrics). One registry per gateway, so several gateways
 * in one process (tests, `servman start`) do not collide.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Counts the relay's hot path keeps as plain numbers, once per frame in and out: a prom-client
 * `inc` (its label hashing and maps) costs more than the rest of relaying a small frame. They are
 * copied into their counters when the registry is collected (a scrape of /metrics).
 */
export class HotCounts {
  /** Frames sent to clients. */
  eventsOut = 0;
  /** Client requests, by type. */
  readonly requests = new Map<string, number>();

  request(type: string): void {
    this.requests.set(type, (this.requests.get(type) ?? 0) + 1);
  }
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly hot = new HotCounts();
  readonly connections = new Gauge({ name: "servman_gateway_connections", help: "Open client connections", registers: [this.registry] });
  readonly connectionsTotal = new Counter({ name: "servman_gateway_connections_total", help: "Client connections accepted", registers: [this.registry] });
  readonly requests = new Counter({
    name: "servman_gateway_requests_total",
    help: "Client requests by type",
    labelNames: ["type"],
    registers: [this.registry],
    collect: fromHot((counter) => {
      for (const [type, count] of this.hot.requests) counter.inc({ type }, count);
    }),
  });
  readonly errors = new Counter({ name: "servman_gateway_errors_total", help: "Error replies by code", labelNames: ["code"], registers: [this.registry] });
  readonly launches = new Counter({ name: "servman_gateway_launches_total", help: "Launches by result (ok or error code)", labelNames: ["result"], registers: [this.registry] });
  readonly eventsOut = new Counter({
    name: "servman_gateway_events_total",
    help: "Frames sent to clients",
    registers: [this.registry],
    collect: fromHot((counter) => counter.inc(this.hot.eventsOut)),
  });
  readonly slowConsumers = new Counter({ name: "servman_gateway_slow_consumers_total", help: "Clients disconnected for not reading", registers: [this.registry] });
  readonly refusedTickets = new Counter({ name: "servman_gateway_refused_tickets_total", help: "Connections closed with 1008 for a missing or bad ticket", registers: [this.registry] });
  readonly limited = new Counter({
    name: "servman_gateway_limited_total",
    help: "Requests or connections refused by a limit (rate, joins, connections_per_ip, instances_per_user)",
    labelNames: ["limit"],
    registers: [this.registry],
  });
  readonly internalErrors = new Counter({
    name: "servman_gateway_internal_errors_total",
    help: "Exceptions caught at an entry point (a frame, an HTTP request, a Redis message, a timer), by where",
    labelNames: ["where"],
    registers: [this.registry],
  });
  readonly badBusMessages = new Counter({
    name: "servman_gateway_bad_bus_messages_total",
    help: "Messages on the gateway's Redis channels dropped because they did not have the expected shape",
    registers: [this.registry],
  });
  readonly oversizedFrames = new Counter({ name: "servman_gateway_oversized_frames_total", help: "Connections closed with 1009", registers: [this.registry] });
  readonly fanoutGaps = new Counter({
    name: "servman_gateway_fanout_gaps_total",
    help: "Fanouts that never came (lost with a Redis master in a failover); their sessions were told dropped",
    registers: [this.registry],
  });
  readonly resyncs = new Counter({
    name: "servman_gateway_resyncs_total",
    help: "Sessions resumed on their open connection because a node kept their events (a fanout reached no subscriber: a Redis failover)",
    registers: [this.registry],
  });
  readonly pingTimeouts = new Counter({ name: "servman_gateway_ping_timeouts_total", help: "Connections closed for not answering a ping", registers: [this.registry] });

  constructor(defaultMetrics: boolean) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "servman_" });
  }
}

/** A counter's `collect`: it is set from the hot counts by `read` each time it is collected. */
function fromHot<T extends string>(read: (counter: Counter<T>) => void): (this: Counter<T>) => void {
  return function (this: Counter<T>) {
    this.reset();
    read(this);
  };
}
