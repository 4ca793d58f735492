import type { WorkerTask } from "./runner";

/** Every background task of the worker process. */
export const workerTasks: WorkerTask[] = [];
