/**
 * Compiles a TypeBox schema once and turns its first failure into a `bad_request` message that
 * names the field, so every boundary (client frames, task lines, config) reports errors alike.
 */
import type { Static, TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";

/** A compiled check for one schema. */
export interface Validator<T extends TSchema> {
  check(value: unknown): value is Static<T>;
  /** The first problem as `"path: message"`, or null when `value` is valid. */
  explain(value: unknown): string | null;
}

/** Compiles `schema`; call once at module load, not per message. */
export function compile<T extends TSchema>(schema: T): Validator<T> {
  const compiled = TypeCompiler.Compile(schema);
  return {
    check: (value: unknown): value is Static<T> => compiled.Check(value),
    explain(value: unknown): string | null {
      const first = compiled.Errors(value).First();
      if (!first) return null;
      const where = first.path === "" ? "message" : `field ${first.path.slice(1).replaceAll("/", ".")}`;
      return `${where}: ${first.message.toLowerCase()}`;
    },
  };
}
