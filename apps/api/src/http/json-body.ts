/**
 * How deeply a JSON body may nest. Legitimate bodies stay far below it (a TF.js model.json nests
 * about ten levels); far deeper ones overflow the stack of whatever recurses over them later
 * (JSON.stringify before a jsonb write, PostgreSQL's own jsonb parser), which used to be a 500.
 */
export const MAX_JSON_DEPTH = 100;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const U = 0x75;
const ZERO = 0x30;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * What makes a JSON text unfit to store, found byte by byte before it is parsed: nesting deeper
 * than `maxDepth` (brackets inside strings do not count), or a `\u0000` escape in a string
 * (PostgreSQL's text and jsonb cannot hold U+0000, and a raw NUL byte is not valid JSON anyway).
 * UTF-8 continuation bytes are never ASCII, so the bytes are safe to scan as they come; malformed
 * text is left for the parser to refuse.
 */
export function jsonBodyProblem(body: Uint8Array, maxDepth = MAX_JSON_DEPTH): 'too_deep' | 'nul' | null {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (inString) {
      if (c === BACKSLASH) {
        if (body[i + 1] === U && body[i + 2] === ZERO && body[i + 3] === ZERO && body[i + 4] === ZERO && body[i + 5] === ZERO) return 'nul';
        i++;
      } else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) return 'too_deep';
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
  return null;
}
