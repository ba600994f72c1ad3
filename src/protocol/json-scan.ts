/**
 * Reading JSON text without building values, for the relay's fast paths (send-frame.ts): where a
 * value travels on as the text it came in, it only has to be checked, not parsed and encoded again.
 *
 * The scanner follows the JSON grammar exactly as `JSON.parse` takes it (RFC 8259: whitespace is
 * space, tab, CR and LF; strings may hold any code unit from U+0020 up, lone surrogates included,
 * and the escapes `\" \\ \/ \b \f \n \r \t \uXXXX`). It never recurses, so no nesting reaches the
 * stack, and it gives up (returns -1) at the first level past its bound.
 *
 * In `canonical` mode it also gives up on any text `JSON.stringify(JSON.parse(text))` would not
 * give back unchanged: whitespace, a number not in its shortest form (`1.0`, `1e2`, `-0`, digits
 * past a double's precision, `1e400`), an escape `JSON.stringify` would not write (`\/`,
 * `\u0041`), a lone surrogate, an object with a repeated key (parsing keeps the last) or a key
 * starting with a digit (parsing puts array-index keys first), or more than {@link MAX_CANONICAL_KEYS}
 * keys (not worth checking for repeats). Canonical text can be spliced into a message as is: the
 * result is byte for byte what encoding the parsed value would have made. Anything else goes
 * the slow way (parse, check, encode), which is always right, only slower.
 */

/** Keys one object may have in canonical mode (past it, the slow path checks it). */
export const MAX_CANONICAL_KEYS = 32;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Set by {@link scanString}: whether the last string scanned held an escape. */
let escaped = false;

/** True when the last string {@link scanString} read held an escape (its text is not its value). */
export function lastStringEscaped(): boolean {
  return escaped;
}

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** The first position from `at` that is not JSON whitespace. */
export function skipWhitespace(text: string, at: number): number {
  while (at < text.length && isWhitespace(text.charCodeAt(at))) at++;
  return at;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Whether `JSON.stringify` writes code unit `code` (below U+0020) as `\u00XX`: those without a short escape. */
function needsUnicodeEscape(code: number): boolean {
  return code !== 0x08 && code !== 0x09 && code !== 0x0a && code !== 0x0c && code !== 0x0d;
}

/** The value of the canonical `\u00XX` escape at `at` (the backslash), or -1: lowercase hex, below U+0020, without a short form. */
function canonicalUnicodeEscape(text: string, at: number): number {
  if (text.charCodeAt(at + 2) !== 0x30 || text.charCodeAt(at + 3) !== 0x30) return -1;
  const high = text.charCodeAt(at + 4);
  const low = text.charCodeAt(at + 5);
  if (high !== 0x30 && high !== 0x31) return -1;
  const lowValue = low >= 0x30 && low <= 0x39 ? low - 0x30 : low >= 0x61 && low <= 0x66 ? low - 0x61 + 10 : -1;
  if (lowValue < 0) return -1;
  const code = (high - 0x30) * 16 + lowValue;
  return needsUnicodeEscape(code) ? code : -1;
}

/** A run of string characters that need no look: not a quote, backslash, control character or surrogate. */
// eslint-disable-next-line no-control-regex -- control characters are what it must stop at
const PLAIN_RUN = /[^"\\\u0000-\u001f\ud800-\udfff]*/y;

/**
 * The position after the JSON string whose opening quote is at `at`, or -1 when it is not one
 * (or, `canonical`, not as `JSON.stringify` writes strings). {@link lastStringEscaped} then says
 * whether it held an escape.
 */
export function scanString(text: string, at: number, canonical: boolean): number {
  escaped = false;
  let i = at + 1;
  const end = text.length;
  while (i < end) {
    // Plain characters in one native step (a regex), the rest one by one.
    PLAIN_RUN.lastIndex = i;
    PLAIN_RUN.test(text);
    i = PLAIN_RUN.lastIndex;
    if (i >= end) return -1;
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      escaped = true;
      const e = text.charCodeAt(i + 1);
      if (e === QUOTE || e === BACKSLASH || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
      } else if (e === 0x75 /* u */) {
        if (canonical ? canonicalUnicodeEscape(text, i) < 0 : !(isHex(text.charCodeAt(i + 2)) && isHex(text.charCodeAt(i + 3)) && isHex(text.charCodeAt(i + 4)) && isHex(text.charCodeAt(i + 5)))) {
          return -1;
        }
        i += 6;
      } else if (e === 0x2f /* / */ && !canonical) {
        i += 2;
      } else {
        return -1;
      }
    } else if (c < 0x20) {
      return -1;
    } else {
      // A surrogate. A pair is written as is; a lone one would be escaped by JSON.stringify.
      const next = text.charCodeAt(i + 1);
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i += 2;
      else if (canonical) return -1;
      else i++;
    }
  }
  return -1;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * The position after the JSON number starting at `at`, or -1 when there is none (or,
 * `canonical`, when `JSON.stringify` would write its value otherwise).
 */
export function scanNumber(text: string, at: number, canonical: boolean): number {
  let i = at;
  if (text.charCodeAt(i) === 0x2d /* - */) i++;
  const intStart = i;
  const first = text.charCodeAt(i);
  if (first === 0x30) i++;
  else if (first >= 0x31 && first <= 0x39) while (isDigit(text.charCodeAt(++i)));
  else return -1;
  const intDigits = i - intStart;
  let fraction = 0;
  if (text.charCodeAt(i) === 0x2e /* . */) {
    if (!isDigit(text.charCodeAt(++i))) return -1;
    while (isDigit(text.charCodeAt(++i)));
    fraction = i - intStart - intDigits - 1;
  }
  let exponent = false;
  const e = text.charCodeAt(i);
  if (e === 0x65 || e === 0x45) {
    exponent = true;
    let j = i + 1;
    const sign = text.charCodeAt(j);
    if (sign === 0x2b || sign === 0x2d) j++;
    if (!isDigit(text.charCodeAt(j))) return -1;
    while (isDigit(text.charCodeAt(++j)));
    i = j;
  }
  if (!canonical) return i;
  if (!exponent) {
    // An integer of up to 15 digits is exact in a double and written back as it is, except -0.
    if (fraction === 0) {
      if (intDigits <= 15) return intDigits === 1 && first === 0x30 && intStart !== at ? -1 : i;
    } else if (shortDecimal(text, intStart, intDigits, fraction)) {
      return i;
    }
  }
  const token = text.slice(at, i);
  return String(Number(token)) === token ? i : -1;
}

/**
 * True for a decimal `intDigits` + `.` + `fraction` digits at `intStart` (no exponent) that
 * `JSON.stringify` writes back as it is, told without converting it: at most 15 significant
 * digits (which a double keeps exactly, and has no shorter form of), no trailing zero, and not
 * below 1e-6 (written with an exponent).
 */
function shortDecimal(text: string, intStart: number, intDigits: number, fraction: number): boolean {
  const point = intStart + intDigits;
  if (text.charCodeAt(point + fraction) === 0x30) return false;
  if (intDigits === 1 && text.charCodeAt(intStart) === 0x30) {
    let zeros = 0;
    while (text.charCodeAt(point + 1 + zeros) === 0x30) zeros++;
    return zeros <= 5 && fraction - zeros <= 15;
  }
  return intDigits + fraction <= 15;
}

/** Per open container (up to `top`): where its keys begin in the key stack (objects), or -1 (arrays). */
const containers: number[] = [];
let top = 0;
/** Start and end of each key of the open objects (canonical mode), up to `keyTop`. */
const keyStarts: number[] = [];
const keyEnds: number[] = [];
let keyTop = 0;

function sameText(text: string, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (let k = 0; k < aEnd - a; k++) if (text.charCodeAt(a + k) !== text.charCodeAt(b + k)) return false;
  return true;
}

/** Notes the key at `start`..`end` of the innermost object; false when it is a repeat or one too many. */
function noteKey(text: string, start: number, end: number): boolean {
  const from = containers[top - 1];
  if (keyTop - from >= MAX_CANONICAL_KEYS) return false;
  for (let k = from; k < keyTop; k++) if (sameText(text, keyStarts[k], keyEnds[k], start, end)) return false;
  keyStarts[keyTop] = start;
  keyEnds[keyTop] = end;
  keyTop++;
  return true;
}

/**
 * The position after the JSON value starting at `at` (no whitespace before it), or -1 when there
 * is none, when it nests past `maxDepth` (its outermost container at `depth`), or, `canonical`,
 * when it is not canonical (see the top of this file).
 */
export function scanValue(text: string, at: number, depth: number, maxDepth: number, canonical: boolean): number {
  top = 0;
  keyTop = 0;
  let i = at;
  // Each turn reads one value at i, then the separators after it until the next value.
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (depth + top > maxDepth) return -1;
      containers[top++] = c === 0x7b ? keyTop : -1;
      i++;
      if (!canonical) i = skipWhitespace(text, i);
      const close = text.charCodeAt(i);
      if (close === (c === 0x7b ? 0x7d : 0x5d)) {
        top--;
        i++;
      } else if (c === 0x7b) {
        i = member(text, i, canonical);
        if (i < 0) return -1;
        continue;
      } else {
        continue;
      }
    } else if (c === QUOTE) {
      i = scanString(text, i, canonical);
    } else if (c === 0x74 /* t */) {
      i = text.startsWith("true", i) ? i + 4 : -1;
    } else if (c === 0x66 /* f */) {
      i = text.startsWith("false", i) ? i + 5 : -1;
    } else if (c === 0x6e /* n */) {
      i = text.startsWith("null", i) ? i + 4 : -1;
    } else {
      i = scanNumber(text, i, canonical);
    }
    if (i < 0) return -1;
    // After a value: the next item of its container, or the container's end (maybe several).
    for (;;) {
      if (top === 0) return i;
      if (!canonical) i = skipWhitespace(text, i);
      const s = text.charCodeAt(i);
      const from = containers[top - 1];
      if (s === 0x2c /* , */) {
        i++;
        if (!canonical) i = skipWhitespace(text, i);
        if (from >= 0) {
          i = member(text, i, canonical);
          if (i < 0) return -1;
        }
        break;
      }
      if (s !== (from >= 0 ? 0x7d : 0x5d)) return -1;
      top--;
      if (from >= 0) keyTop = from;
      i++;
    }
  }
}

/** Reads `"key":` at `at` in the innermost object; returns where its value starts, or -1. */
function member(text: string, at: number, canonical: boolean): number {
  if (text.charCodeAt(at) !== QUOTE) return -1;
  const end = scanString(text, at, canonical);
  if (end < 0) return -1;
  if (canonical && (isDigit(text.charCodeAt(at + 1)) || !noteKey(text, at, end))) return -1;
  let i = canonical ? end : skipWhitespace(text, end);
  if (text.charCodeAt(i) !== 0x3a /* : */) return -1;
  i++;
  return canonical ? i : skipWhitespace(text, i);
}
