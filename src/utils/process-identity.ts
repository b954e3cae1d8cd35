// Who owns a journal entry or a temp file, and whether that owner still runs. An owner key names
// a process so that a dead one on this machine is recognised at once, without leases: the host,
// the kernel's boot, the pid namespace, the pid and the process's start time. A pid reused by a
// new process has another start time; a container restarted on the same volume has another pid
// namespace and is judged by the caller's fallback (a heartbeat), never by a pid that means
// something else there.
import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";

/** Characters an owner key may hold: it is part of file names. */
const KEY_PART = /[^A-Za-z0-9-]/g;

interface ParsedOwner {
  /** host, boot and pid namespace: equal means "on this kernel, in this pid namespace". */
  readonly machine: string;
  readonly pid: number;
  readonly startTime: string;
}

function readOr(read: () => string, fallback: string): string {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/**
 * The process start time in clock ticks since boot (Linux); "" where /proc is missing, and
 * "dead" for a zombie (killed, not yet reaped by its parent).
 */
function startTimeOf(pid: number | "self"): string {
  return readOr(() => {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Field 22; the command name (field 2) may hold spaces and parentheses, so count from its end.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return "dead";
    return fields[19] ?? "";
  }, "");
}

const machine = [
  hostname().replace(KEY_PART, "_").slice(0, 64) || "host",
  readOr(() => readFileSync("/proc/sys/kernel/random/boot_id", "latin1").trim().replace(/-/g, "").slice(0, 12), "noboot"),
  readOr(() => readlinkSync("/proc/self/ns/pid").replace(/\D/g, ""), "nons"),
].join("+");

/** This process's owner key: `host+boot+pidns+pid+starttime`, safe inside a file name. */
export const processOwnerKey = `${machine}+${process.pid}+${startTimeOf("self") || "nostart"}`;

/** The characters an owner key is made of, for file-name patterns. */
export const OWNER_KEY_PATTERN = "[A-Za-z0-9_-]+\\+[A-Za-z0-9]+\\+[A-Za-z0-9]+\\+\\d+\\+[A-Za-z0-9]+";

function parseOwnerKey(key: string): ParsedOwner | undefined {
  const parts = key.split("+");
  if (parts.length !== 5) return undefined;
  const [host, boot, ns, pid, startTime] = parts as [string, string, string, string, string];
  const number = Number(pid);
  if (!Number.isSafeInteger(number) || number <= 0) return undefined;
  return { machine: `${host}+${boot}+${ns}`, pid: number, startTime };
}

/**
 * Whether the owner runs: `true` or `false` when this process can tell (the same host, boot and
 * pid namespace), `undefined` when it cannot (another host or container): the caller then judges
 * by a heartbeat or by age.
 */
export function isOwnerAlive(key: string): boolean | undefined {
  if (key === processOwnerKey) return true;
  const owner = parseOwnerKey(key);
  if (!owner || owner.machine !== machine) return undefined;
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: a process of another user runs under that pid; its start time still tells.
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (owner.startTime === "nostart") return true;
  const now = startTimeOf(owner.pid);
  return now === "" ? false : now === owner.startTime;
}
