import type { Deps } from "~/server/infra/deps";

/** A periodic background task; `run` returns how much work it did (0 = idle). */
export type WorkerTask = {
  name: string;
  /** Pause between runs when idle (a number, or read from the configuration). */
  intervalMs: number | ((env: Deps["env"]) => number);
  run: (deps: Deps, signal: AbortSignal) => Promise<number>;
};

/**
 * Runs each task in its own loop: immediately again while it finds work, after
 * its interval when idle, with a back-off when it fails. Several worker
 * processes may run at once; the tasks themselves claim work safely.
 */
export function runTasks(deps: Deps, tasks: WorkerTask[], signal: AbortSignal): Promise<void[]> {
  return Promise.all(
    tasks.map(async (task) => {
      let failures = 0;
      const interval = typeof task.intervalMs === "function" ? task.intervalMs(deps.env) : task.intervalMs;
      while (!signal.aborted) {
        let delay = interval;
        try {
          const done = await task.run(deps, signal);
          failures = 0;
          if (done > 0) delay = 0;
        } catch (err) {
          failures++;
          delay = Math.min(interval * 2 ** failures, 30_000);
          deps.log.warn({ err, task: task.name, failures }, "worker task failed; backing off");
        }
        if (delay > 0) await sleep(delay, signal);
      }
    }),
  );
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
