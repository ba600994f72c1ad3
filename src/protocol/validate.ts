/**
 * Compiles a TypeBox schema once and turns its first failure into a `bad_request` message that
 * names the field, so every boundary (client frames, task lines, config) reports errors alike.
 */
import type { Static, TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";

/** The first problem found in a value: a dotted key path ("" for the value itself) and what was expected. */
export interface Problem {
  path: string;
  message: string;
}

/** A compiled check for one schema. */
export interface Validator<T extends TSchema> {
  check(value: unknown): value is Static<T>;
  /** The first problem, or null when `value` is valid. */
  problem(value: unknown): Problem | null;
  /** The first problem as `"field a.b: message"`, or null when `value` is valid. */
  explain(value: unknown): string | null;
}

/** Compiles `schema`; call once at module load, not per message. */
export function compile<T extends TSchema>(schema: T): Validator<T> {
  const compiled = TypeCompiler.Compile(schema);
  const problem = (value: unknown): Problem | null => {
    // The compiled check is fast; the error walker is slow, so it only runs on invalid values.
    if (compiled.Check(value)) return null;
    const first = compiled.Errors(value).First();
    if (!first) return null;
    const path = first.path.slice(1).replaceAll("/", ".");
    // "Expected union value" says nothing; a union of literals can say what it accepts.
    const options = (first.schema as { anyOf?: { const?: unknown }[] }).anyOf;
    if (options?.every((o) => o.const !== undefined)) {
      return { path, message: `expected one of ${options.map((o) => JSON.stringify(o.const)).join(", ")}` };
    }
    // Only the first letter: the rest may quote a pattern whose case matters.
    return { path, message: first.message.charAt(0).toLowerCase() + first.message.slice(1) };
  };
  return {
    check: (value: unknown): value is Static<T> => compiled.Check(value),
    problem,
    explain(value: unknown): string | null {
      const p = problem(value);
      return p === null ? null : `${p.path === "" ? "message" : `field ${p.path}`}: ${p.message}`;
    },
  };
}
