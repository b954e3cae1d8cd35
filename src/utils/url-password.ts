// Passwords in URLs kept out of error messages: `http://user:secret@host` reads
// `http://user:***@host` wherever an error quotes such a URL (fetch quotes a URL it refuses).

const USERINFO_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@:]*):[^\s/?#@]*@/gi;

/** `text` with the password of every `scheme://user:password@` in it masked: `scheme://user:***@`. */
export function maskUrlPasswords(text: string): string {
  return text.replace(USERINFO_PASSWORD, "$1:***@");
}

/** `error` with the URL passwords in its message and stack, and those of its causes, masked in place; returned. */
export function maskErrorUrlPasswords<T>(error: T): T {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth += 1) {
    for (const key of ["message", "stack"] as const) {
      const text = current[key];
      if (typeof text !== "string") continue;
      const masked = maskUrlPasswords(text);
      if (masked === text) continue;
      try {
        Object.defineProperty(current, key, { value: masked, writable: true, configurable: true, enumerable: false });
      } catch {
        // A frozen error keeps its text; nothing better can be done.
      }
    }
    current = current.cause;
  }
  return error;
}
