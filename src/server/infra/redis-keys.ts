/**
 * Redis keys built from ids. Ids may contain `:` (the key separator), so each
 * id is length-prefixed: `lock:acct:5:alice:6:points`. Two different tuples of
 * ids can then never make the same key (a user "a:b" with credit type "c" and
 * a user "a" with credit type "b:c" get different buckets and locks).
 */
export function idPart(id: string): string {
  return `${id.length}:${id}`;
}

/** `kind` and the ids, each id length-prefixed. */
export function idKey(kind: string, ...ids: string[]): string {
  return [kind, ...ids.map(idPart)].join(":");
}
