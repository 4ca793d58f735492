/**
 * Redis keys built from ids. Ids may contain `:` (the key separator), so each
 * id is length-prefixed: `lock:acct:{5:alice:6:points}`. Two different tuples
 * of ids can then never make the same key (a user "a:b" with credit type "c"
 * and a user "a" with credit type "b:c" get different buckets and locks).
 *
 * Every key carries a Redis Cluster hash tag (the part in `{}`), so the keys
 * one script, MULTI or multi-key command touches live in one slot: the keys of
 * one operation are built as `<kind>:{<ids>}` plus a field, i.e. they are equal
 * up to and including the tag's `}` and differ only after it. Redis hashes the
 * text between the first `{` and the first `}` after it, so such keys share a
 * slot whatever the ids hold (even `{` or `}`) and whatever REDIS_KEY_PREFIX
 * (ioredis prepends it) holds: a prefix with its own `{…}` merely puts every
 * key in the prefix's slot, which is still one slot per operation.
 */
export function idPart(id: string): string {
  return `${id.length}:${id}`;
}

/** The hash tag of a tuple of ids: `{5:alice:6:points}`. */
export function idTag(...ids: string[]): string {
  return `{${ids.map(idPart).join(":")}}`;
}

/**
 * `kind:{ids}` (ids length-prefixed, the hash tag), and `:field` when given:
 * keys of one tuple of ids differ only by their field, hence share a slot.
 */
export function taggedKey(kind: string, ids: readonly string[], field?: string): string {
  const key = `${kind}:${idTag(...ids)}`;
  return field === undefined ? key : `${key}:${field}`;
}
