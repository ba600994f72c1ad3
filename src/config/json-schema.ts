/**
 * The configuration file's JSON Schema as a document for editors (docs/configuration.md#json-schema):
 * the one schema of schema.ts (TypeBox builds JSON Schema), with `$schema`, `$id`, a title, and
 * each key's environment variable in its description. `servman config schema` prints it and
 * conf/servman.schema.json holds a copy.
 */
import { envSegment, LEVEL, type SchemaNode } from "./env-names.js";
import { ConfigFileSchema } from "./schema.js";

/** The `$id` of the document: it names the schema and is no address to fetch. */
export const CONFIG_SCHEMA_ID = "urn:servman:config";

/** What the sections are for: the rest is in docs/configuration.md. */
const SECTIONS: Record<string, string> = {
  $schema: "The JSON Schema of this file, for editors; Servman ignores it.",
  redis: "Where Redis is: a URL (redis://, rediss://, redis+cluster://, redis+sentinel://), {cluster: [URL, ...]} or {sentinels: [HOST:PORT, ...], name: MASTER}.",
  prefix: "Prefix of every Redis key and channel of the deployment.",
  gateway: "The gateway: address, TLS, limits on clients.",
  node: "The node: id, capacity, launches.",
  auth: "Tickets and admin tokens; without this section, gateways run in open mode.",
  tasks: "The tasks nodes run, by name: each has either module (a JavaScript file) or command (an argv array).",
};

type Described = SchemaNode & { description?: string };

/** Adds to each key below `node` the name of the variable that sets it. */
function describe(node: Described, levels: string[]): void {
  for (const member of node.anyOf ?? [node]) {
    for (const [key, child] of Object.entries(member.properties ?? {}) as [string, Described][]) {
      const own = levels.length === 0 ? SECTIONS[key] : undefined;
      if (key.startsWith("$")) {
        if (own !== undefined) child.description = own;
        continue;
      }
      const names = [...levels, envSegment(key)];
      child.description = [own, `Environment: SERVMAN_${names.join(LEVEL)}.`].filter(Boolean).join(" ");
      describe(child, names);
    }
    for (const child of Object.values(member.patternProperties ?? {}) as Described[]) describe(child, [...levels, "<NAME>"]);
  }
}

/** The JSON Schema document of the configuration file. */
export function configJsonSchema(): Record<string, unknown> {
  // A plain copy: TypeBox's own objects carry symbols and must stay as they are for the validator.
  const schema = JSON.parse(JSON.stringify(ConfigFileSchema)) as Described;
  describe(schema, []);
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    $id: CONFIG_SCHEMA_ID,
    title: "Servman configuration file",
    description:
      "See docs/configuration.md in the servman package. Every key can also be set in the environment: SERVMAN_ and the key path in upper snake case, __ between levels; a name ending in _FILE reads the value from a file.",
    ...schema,
  };
}
