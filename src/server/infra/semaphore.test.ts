import { describe, expect, it } from "vitest";
import { Semaphore } from "./semaphore";

describe("semaphore", () => {
  it("grants `permits` at once, queues up to `maxWaiting` in order, and refuses past that", async () => {
    const sem = new Semaphore(2, 2, 1_000);
    const a = await sem.acquire();
    const b = await sem.acquire();
    expect(a && b).toBeTruthy();
    const order: string[] = [];
    const c = sem.acquire().then((r) => (order.push("c"), r));
    const d = sem.acquire().then((r) => (order.push("d"), r));
    expect(await sem.acquire()).toBeNull();
    a!();
    a!(); // a second release is a no-op
    const rc = await c;
    expect(rc).toBeTruthy();
    expect(sem.inUse).toBe(2);
    b!();
    expect(await d).toBeTruthy();
    expect(order).toEqual(["c", "d"]);
  });

  it("gives up on a waiter after waitMs", async () => {
    const sem = new Semaphore(1, 5, 30);
    const held = await sem.acquire();
    const started = Date.now();
    expect(await sem.acquire()).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    held!();
    expect(await sem.acquire()).toBeTruthy();
  });
});
