// cluster-key-slot (ioredis' own dependency) ships no types.
declare module "cluster-key-slot" {
  /** The Redis Cluster slot (0–16383) of a key, honouring `{hash tags}`. */
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    /** The slot shared by every key, or -1 when they span slots. */
    function generateMulti(keys: (string | Buffer)[]): number;
  }
  export = calculateSlot;
}
