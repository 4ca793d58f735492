import { describe, expect, it } from "vitest";
import { bucketOfInput } from "./admission";

describe("bucketOfInput", () => {
  it("takes the user and credit type from the input; without a credit type the user's calls share one bucket", () => {
    expect(bucketOfInput({ userId: "u1", creditTypeId: "points", amount: 1 })).toEqual({ userId: "u1", creditTypeId: "points" });
    expect(bucketOfInput({ userId: "u1", activityId: "a", itemId: "i" })).toEqual({ userId: "u1", creditTypeId: "any" });
    expect(bucketOfInput({ activityId: "a" })).toBeNull();
    expect(bucketOfInput(undefined)).toBeNull();
  });
});
