/** Running a bounded number of async jobs at once (launches, connection handshakes). */

/**
 * Calls `fn(i)` for i in [0, count) with at most `limit` calls in flight, and resolves with the
 * results in index order. The first rejection rejects the whole call (the others still finish).
 */
export async function mapLimit<T>(count: number, limit: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  let failure: { err: unknown } | null = null;
  const lane = async () => {
    while (next < count && failure === null) {
      const i = next++;
      try {
        results[i] = await fn(i);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, lane));
  if (failure !== null) throw (failure as { err: unknown }).err;
  return results;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
