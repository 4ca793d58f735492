import type { WorkerTask } from "./runner";
import { outboxRelayTask } from "~/server/outbox/relay";
import { stuckOperationResolverTask } from "~/server/operations/stuck-resolver";
import { requestRecordCleanupTask } from "~/server/resilience/request-replay";

/** Every background task of the worker process. */
export const workerTasks: WorkerTask[] = [outboxRelayTask, stuckOperationResolverTask, requestRecordCleanupTask];
