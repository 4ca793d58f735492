import { describe, expect, it } from "vitest";
import { DUMMY_PASSWORD_HASH, hashPassword, needsRehash, verifyPassword } from "./passwords";

describe("password hashing", () => {
  it("verifies the right password and refuses others", async () => {
    const hash = await hashPassword("correct horse battery");
    expect(hash).toMatch(/^scrypt\$131072\$8\$1\$/);
    expect(needsRehash(hash)).toBe(false);
    expect(await verifyPassword("correct horse battery", hash)).toBe(true);
    expect(await verifyPassword("correct horse batterY", hash)).toBe(false);
  });

  it("salts: the same password hashes differently", async () => {
    expect(await hashPassword("same password here")).not.toBe(await hashPassword("same password here"));
  });

  it("still verifies a hash made with older, weaker parameters, and asks for a rehash", async () => {
    // "correct horse battery" under N = 2^14.
    const old = "scrypt$16384$8$1$9jjc2qd5Kf8bBX7dXcN6ew$k3dDNGNRiZxNNTdY4Gbi76ghqO-40-npDGN5MVk4XOk";
    expect(needsRehash(old)).toBe(true);
    expect(await verifyPassword("correct horse battery", old)).toBe(true);
    expect(await verifyPassword("correct horse batterY", old)).toBe(false);
  });

  it("never matches the dummy hash or a malformed one", async () => {
    expect(await verifyPassword("", DUMMY_PASSWORD_HASH)).toBe(false);
    expect(await verifyPassword("x", "plain")).toBe(false);
  });
});
