/** Restart backoff and the crash-loop limit (nodes/restart-policy.ts), on a clock the test sets. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RESTART_WINDOW_MS, RestartPolicy } from "../nodes/restart-policy.js";

describe("RestartPolicy", () => {
  it("restart never: no end is restarted", () => {
    const policy = new RestartPolicy({ restart: "never", maxRestarts: 5 });
    assert.equal(policy.next("crashed", 0), null);
    assert.equal(policy.next("exited", 0), null);
  });

  it("on-failure restarts crashes, not clean exits; always restarts both", () => {
    const onFailure = new RestartPolicy({ restart: "on-failure", maxRestarts: 5 });
    assert.equal(onFailure.next("exited", 0), null);
    assert.equal(onFailure.next("crashed", 0), 100);
    const always = new RestartPolicy({ restart: "always", maxRestarts: 5 });
    assert.equal(always.next("exited", 0), 100);
    assert.equal(always.attempts, 1);
  });

  it("doubles from 100 ms up to 5 s", () => {
    const policy = new RestartPolicy({ restart: "always", maxRestarts: 100 });
    const delays = Array.from({ length: 9 }, (_, i) => policy.next("crashed", i * 10));
    assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    assert.equal(policy.attempts, 9);
  });

  it("more than maxRestarts within a minute is a crash loop: the instance ends", () => {
    const policy = new RestartPolicy({ restart: "on-failure", maxRestarts: 3 });
    assert.deepEqual(
      [0, 1000, 2000].map((t) => policy.next("crashed", t)),
      [100, 200, 400],
    );
    assert.equal(policy.next("crashed", 3000), null);
    assert.equal(policy.attempts, 3, "a refused restart is not an attempt");
  });

  it("restarts older than the window no longer count, and the backoff falls with them", () => {
    const policy = new RestartPolicy({ restart: "on-failure", maxRestarts: 2 });
    assert.equal(policy.next("crashed", 0), 100);
    assert.equal(policy.next("crashed", 1000), 200);
    assert.equal(policy.next("crashed", RESTART_WINDOW_MS), null, "both still within the window");
    assert.equal(policy.next("crashed", RESTART_WINDOW_MS + 1), 200, "the first one left the window");
    assert.equal(policy.next("crashed", RESTART_WINDOW_MS + 1001 + RESTART_WINDOW_MS), 100, "all of them left it");
    assert.equal(policy.attempts, 4, "attempts keep counting for the clients' events");
  });
});
