/**
 * How deeply JSON nests, measured without recursion. `JSON.stringify` (and many JSON libraries in
 * other languages) recurse once per level and overflow the stack a few thousand levels down, so
 * every edge that takes JSON from outside bounds its depth before anything walks it
 * (docs/security.md#hostile-input). `JSON.parse` itself is iterative in V8 and safe to call first.
 */

/**
 * True when JSON text nests arrays and objects more than `max` levels deep (a top-level object is
 * level 1). Meant for text that is then parsed: on invalid JSON the answer is unspecified, and
 * the parse reports the problem. Scans each character once and stops at the first level past `max`.
 */
export function jsonTextTooDeep(text: string, max: number): boolean {
  // Cheap exit: fewer opening brackets than the limit cannot exceed it.
  if (text.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

/**
 * True when a parsed value nests arrays and objects more than `max` levels deep (a top-level
 * object is level 1). Walks with an explicit stack, so any depth is safe to ask about; stops at
 * the first level past `max`.
 */
export function valueTooDeep(value: unknown, max: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > max) return true;
    const children = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
    for (const child of children) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
