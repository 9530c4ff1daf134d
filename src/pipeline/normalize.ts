/**
 * RFC 5321 §2.3.8: a bare CR or LF is not a line ending, and relaying one lets
 * a downstream server that treats it as one see a different message (the 2023
 * SMTP smuggling attacks used `<LF>.<LF>` to end DATA early there). We turn every
 * bare CR and bare LF into CRLF, so what we sign and relay has one reading only.
 * Returns the input unchanged (same Buffer) when it is already clean.
 */
export function normalizeLineEndings(input: Buffer): Buffer {
  let clean = true;
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c === 10 && (i === 0 || input[i - 1] !== 13)) {
      clean = false;
      break;
    }
    if (c === 13 && input[i + 1] !== 10) {
      clean = false;
      break;
    }
  }
  if (clean) return input;
  const out = Buffer.allocUnsafe(input.length * 2);
  let o = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (c === 13) {
      out[o++] = 13;
      out[o++] = 10;
      if (input[i + 1] === 10) i++;
    } else if (c === 10) {
      out[o++] = 13;
      out[o++] = 10;
    } else {
      out[o++] = c;
    }
  }
  return out.subarray(0, o);
}
