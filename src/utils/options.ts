/**
 * Refuses an option the function does not know (a typo such as `maxbytes` would otherwise be
 * ignored in silence): a `TypeError` naming it, and the option meant when only its case differs.
 */
export function rejectUnknownOptions(options: unknown, known: readonly string[], of: string): void {
  if (options === null || typeof options !== "object") return;
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const meant = known.find((name) => name.toLowerCase() === key.toLowerCase());
    throw new TypeError(`Unknown option \`${key}\` of ${of}${meant ? ` (did you mean \`${meant}\`?)` : ""}.`);
  }
}
