/** Asserting configuration errors (docs/configuration.md#errors). */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.js";

/** Asserts that `fn` throws a ConfigError at `path` whose message matches `message`. */
export function configError(fn: () => unknown, path: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.path, path);
    assert.match(err.message, message);
    return true;
  });
}
