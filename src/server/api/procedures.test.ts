import { describe, expect, it } from "vitest";
import { procedures } from "./reference";
import { requestReplay } from "./middleware/request-replay";

describe("the router", () => {
  it("replays X-Request-Id on every mutation (sign-in and sign-out are sessions, not effects)", () => {
    const replay = (requestReplay as unknown as { _middlewares: unknown[] })._middlewares[0];
    const missing = [...procedures()]
      .filter(([path, def]) => def.type === "mutation" && !path.startsWith("auth."))
      .filter(([, def]) => !(def as unknown as { middlewares: unknown[] }).middlewares.includes(replay))
      .map(([path]) => path);
    expect(missing).toEqual([]);
  });
});
