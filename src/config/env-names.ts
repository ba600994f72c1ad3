/**
 * Environment variable names of configuration keys (docs/configuration.md#environment-variables),
 * derived from the schema so that a key added to it gets its variable with no list to keep:
 * `gateway.limits.messagesPerSecond` is `SERVMAN_GATEWAY__LIMITS__MESSAGES_PER_SECOND`.
 */

/** The parts of a JSON Schema (as TypeBox builds them) that the names are derived from. */
export interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  /** A record (`tasks`, `env`): its entries take any name matching the pattern. */
  patternProperties?: Record<string, SchemaNode>;
  anyOf?: SchemaNode[];
  const?: unknown;
  items?: SchemaNode;
}

/** What a variable name resolves to: the key's path in the file and the key's schema. */
export interface KeyTarget {
  path: string[];
  schema: SchemaNode;
  /** Length of the path of the first record entry the name creates (it is in neither file nor earlier variables), or 0. */
  createsAt: number;
}

/** Levels of a key path are joined by this in a variable name. */
export const LEVEL = "__";

/** One key in upper snake case: `messagesPerSecond` is `MESSAGES_PER_SECOND`. */
export function envSegment(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase();
}

/** A record entry's name as it is compared: case does not matter and `_` stands for `-`. */
function entryForm(name: string): string {
  return name.toUpperCase().replaceAll("-", "_");
}

/** The object schemas a level may be (a union of objects, such as `redis`, offers each member's keys). */
function objectsOf(schema: SchemaNode): SchemaNode[] {
  if (schema.anyOf) return schema.anyOf.flatMap(objectsOf);
  return schema.type === "object" ? [schema] : [];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Thrown when a record level matches more than one existing entry. */
export class AmbiguousEntry extends Error {
  constructor(readonly names: string[]) {
    super(`matches ${names.map((n) => JSON.stringify(n)).join(" and ")}`);
  }
}

/** The entry of a record that `segment` names: an existing one, or the name a new one gets. */
function recordEntry(segment: string, value: SchemaNode, existing: unknown): { name: string; exists: boolean } {
  const names = isPlainObject(existing) ? Object.keys(existing).filter((name) => entryForm(name) === entryForm(segment)) : [];
  if (names.length > 1) throw new AmbiguousEntry(names);
  if (names.length === 1) return { name: names[0], exists: true };
  // Entries that are objects (tasks) are named in lower case with `-`, as task names usually are;
  // entries that are plain values (a task's `env`) keep the variable's spelling, as env names do.
  const named = objectsOf(value).length > 0 ? segment.toLowerCase().replaceAll("_", "-") : segment;
  return { name: named, exists: false };
}

/**
 * The key that the levels of a variable name (split at `__`) name, walking `schema` alongside
 * `data` (the values so far, for the names of existing record entries), or null when none does.
 * @throws AmbiguousEntry when a level matches two entries of a record
 */
export function findKey(schema: SchemaNode, levels: string[], data: unknown): KeyTarget | null {
  const path: string[] = [];
  let node = schema;
  let value = data;
  let createsAt = 0;
  for (const segment of levels) {
    let next: SchemaNode | undefined;
    let key: string | undefined;
    for (const object of objectsOf(node)) {
      key = Object.keys(object.properties ?? {}).find((k) => !k.startsWith("$") && envSegment(k) === segment);
      if (key !== undefined) {
        next = object.properties![key];
        break;
      }
      const entries = Object.values(object.patternProperties ?? {});
      if (entries.length === 1 && segment !== "") {
        const entry = recordEntry(segment, entries[0], value);
        key = entry.name;
        next = entries[0];
        if (!entry.exists && createsAt === 0) createsAt = path.length + 1;
        break;
      }
    }
    if (next === undefined || key === undefined) return null;
    path.push(key);
    node = next;
    value = isPlainObject(value) ? value[key] : undefined;
  }
  return path.length === 0 ? null : { path, schema: node, createsAt };
}

/** The names (upper snake case) of the keys right below `schema`; `*` for a record's entries. */
export function levelsBelow(schema: SchemaNode): string[] {
  return objectsOf(schema).flatMap((o) => [
    ...Object.keys(o.properties ?? {})
      .filter((k) => !k.startsWith("$"))
      .map(envSegment),
    ...Object.keys(o.patternProperties ?? {}).map(() => "*"),
  ]);
}

/** Every variable name the schema defines, with `*` for a record entry's level. */
function allNames(schema: SchemaNode, prefix: string[] = []): string[][] {
  const names: string[][] = [];
  for (const object of objectsOf(schema)) {
    for (const [key, child] of Object.entries(object.properties ?? {})) {
      if (key.startsWith("$")) continue;
      const levels = [...prefix, envSegment(key)];
      names.push(levels, ...allNames(child, levels));
    }
    for (const child of Object.values(object.patternProperties ?? {})) names.push(...allNames(child, [...prefix, "*"]));
  }
  return names;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * A name the schema defines that `name` (without `SERVMAN_`) spells with `_` where `__` belongs,
 * as in `NODE_CAPACITY` for `NODE__CAPACITY`; null when there is none.
 */
export function suggestName(schema: SchemaNode, name: string): string | null {
  const file = name.endsWith("_FILE") ? "_FILE" : "";
  const flat = name.slice(0, name.length - file.length).replaceAll(LEVEL, "_");
  for (const levels of allNames(schema)) {
    const pattern = new RegExp(`^${levels.map((l) => (l === "*" ? "([A-Za-z0-9][A-Za-z0-9_.-]*?)" : escape(l))).join("_")}$`);
    const match = pattern.exec(flat);
    if (match === null) continue;
    let entry = 1;
    const suggested = levels.map((l) => (l === "*" ? match[entry++] : l)).join(LEVEL) + file;
    if (suggested !== name) return suggested;
  }
  return null;
}
