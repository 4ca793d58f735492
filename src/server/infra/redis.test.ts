import { describe, expect, it } from "vitest";
import { clusterOptions, isRedisUnavailable, parseNode, redisUnavailable } from "./redis";

describe("Redis errors", () => {
  it("maps single-server and cluster outages to UNAVAILABLE, not a key bug", () => {
    for (const message of [
      "Command timed out",
      "Stream isn't writeable and enableOfflineQueue options is false",
      "Connection is closed.",
      "connect ECONNREFUSED 127.0.0.1:7000",
      "CLUSTERDOWN The cluster is down",
      "CLUSTERDOWN Hash slot not served",
      "TRYAGAIN Multiple keys request during rehashing of slot",
      "Too many Cluster redirections. Last error: ReplyError: MOVED 3999 127.0.0.1:7002",
      // A redirection the client could not follow (its target just died): seen after a master was killed.
      "MOVED 417 127.0.0.1:25065",
      "ASK 417 127.0.0.1:25065",
      "Failed to refresh slots cache.",
      "None of startup nodes is available",
      "Cluster isn't ready and enableOfflineQueue options is false",
    ]) {
      expect(isRedisUnavailable(new Error(message)), message).toBe(true);
      expect(redisUnavailable(new Error(message)).code).toBe("UNAVAILABLE");
    }
    expect(isRedisUnavailable(new Error("CROSSSLOT Keys in request don't hash to the same slot"))).toBe(false);
    expect(isRedisUnavailable(new Error("ERR unknown command 'MOVED 1 x'"))).toBe(false);
    expect(isRedisUnavailable(new Error("All the keys in a pipeline command should belong to the same slot"))).toBe(false);
    expect(isRedisUnavailable("Connection is closed.")).toBe(false);
  });

  it("bounds a cluster's own retries to about one command timeout", () => {
    for (const timeout of [50, 500, 5_000]) {
      const o = clusterOptions({ url: "", keyPrefix: "fp:", commandTimeoutMs: timeout });
      expect(o.enableOfflineQueue).toBe(false);
      expect(o.redisOptions).toMatchObject({ commandTimeout: timeout, maxRetriesPerRequest: 1 });
      const worstWait = o.maxRedirections! * Math.max(o.retryDelayOnFailover!, o.retryDelayOnClusterDown!, o.retryDelayOnTryAgain!);
      expect(worstWait).toBeLessThanOrEqual(Math.max(timeout, 500));
    }
  });

  it("reads cluster seeds, IPv6 ones too", () => {
    expect(parseNode("10.0.0.5:7000")).toEqual({ host: "10.0.0.5", port: 7000 });
    expect(parseNode("[::1]:7001")).toEqual({ host: "::1", port: 7001 });
  });
});
