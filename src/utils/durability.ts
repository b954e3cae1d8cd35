// The one durability setting of the intake path (store, file journal, tus finish): what an
// answered upload survives. See docs/guarantees.md, "Durability".
import type { OptionChecks } from "./options.ts";

/**
 * What an answered upload survives, on every step of the intake path: the stored file, the file
 * journal's entries and a tus upload's finish.
 * - `"process"`: a crash of the process (kill -9, an OOM kill, a restart, a deploy). Every write
 *   is in the kernel's page cache before the answer, which outlives the process, so nothing is
 *   fsynced. A power cut or a kernel crash may lose what the last seconds wrote (Linux writes
 *   dirty pages back within about 30 s): multer's and tusd's promise, and Redis's with
 *   `appendfsync everysec`.
 * - `"power"`: a power cut too. The file's data, its folder and the file journal's entry are on
 *   disk (fsync, fdatasync) before any answer; PostgreSQL's `fsync = on`. A Redis journal lasts
 *   as Redis's persistence makes it (`appendfsync always` to match).
 */
export type Durability = "process" | "power";

const durabilities: readonly Durability[] = ["process", "power"];

/**
 * The durability of options with `durability` and the deprecated `fsync` (`true` is `"power"`),
 * as `check`'s function; contradicting values are refused.
 */
export function durabilityOf(options: { durability?: Durability | undefined; fsync?: boolean | undefined }, check: OptionChecks): Durability {
  check.boolean("fsync", options.fsync);
  if (options.durability === undefined) return options.fsync === true ? "power" : "process";
  const durability = check.oneOf("durability", options.durability, durabilities);
  if (options.fsync !== undefined && options.fsync !== (durability === "power")) {
    check.fail("fsync", `left out (it is deprecated) or ${durability === "power"} with durability ${JSON.stringify(durability)}`, options.fsync);
  }
  return durability;
}

/** The stronger of two durabilities. */
export function strongerDurability(a: Durability, b: Durability): Durability {
  return a === "power" || b === "power" ? "power" : "process";
}
