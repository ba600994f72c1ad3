/** The CLI's help text (docs/cli.md). */
export const USAGE = `Usage: servman <command> [options]

Servers:
  start                      gateway + node in one process (single machine)
  gateway                    a gateway: WebSocket + HTTP for clients and admins
  node                       a worker node (also installed as servman-node)

Cluster (through Redis):
  launch TASK [--args JSON] [--id I] [--timeout MS]
                                       launch an instance; prints {"instance","node"}
  ls [--json]                          list instances
  stop ID                              stop an instance (as an admin)
  inspect ID                           an instance's record, or how it ended (kept 1 h)
  logs ID [--lines 100] [--follow] [--raw]
                                       an instance's log lines (stderr; stdout of module tasks);
                                       control characters shown as \\xNN unless --raw
  drain NODE [--deadline MS]           drain a node: no new launches, instances shut
                                       down, then it exits; waits until it is gone
  nodes [--json]                       list live nodes
  ticket SUB [--tasks a,b] [--instances x,y] [--admin] [--ttl 3600] [--json]
                                       mint a client ticket (needs auth.secret)
  heartbeat N [--pings 10] [--interval 1000] [--gateway URL] [--json]
                                       run N client/service pairs and report

Configuration:
  config schema                        print the configuration file's JSON Schema
  config check [--config FILE]         validate the configuration (file and environment)

Options of every command:
  --config FILE     configuration file (default: $SERVMAN_CONFIG, else conf/servman.json)
  --redis URL       Redis URL (default redis://127.0.0.1:6379, or $SERVMAN_REDIS_URL)
  --prefix P        key prefix of the deployment (default servman)
  --log-level L     fatal|error|warn|info|debug|trace|silent (default: info for
                    servers, warn for the other commands; or $SERVMAN_LOG_LEVEL)
  -h, --help        this text
  -v, --version     print the version of servman and exit
Gateway and start:  --host H  --port N  --insecure
Node and start:     --capacity N  --id ID

Exit codes: 0 ok, 1 failed, 2 usage or configuration error.
`;
