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
 * object is level 1). Recursion stops at level `max + 1`, so the stack it uses is bounded by
 * `max`, whatever the value's depth.
 */
export function valueTooDeep(value: unknown, max: number): boolean {
  return typeof value === "object" && value !== null && deeper(value, 1, max);
}

function deeper(value: object, depth: number, max: number): boolean {
  if (depth > max) return true;
  if (Array.isArray(value)) {
    for (const child of value as unknown[]) {
      if (typeof child === "object" && child !== null && deeper(child, depth + 1, max)) return true;
    }
  } else {
    for (const key in value) {
      const child = (value as Record<string, unknown>)[key];
      if (typeof child === "object" && child !== null && deeper(child, depth + 1, max)) return true;
    }
  }
  return false;
}
