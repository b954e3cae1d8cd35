// The upload page (GET /): each chosen or dropped file gets a row that follows it from its media
// ID to its detections. The upload itself is media-intake/browser's: `upload()` below is the one
// place that calls it (the possession check that skips a file the service has, the resumable tus
// upload, the poll of the detection); the rest is the row. Plain DOM, no build step.
import * as intake from "media-intake/browser";

const tokenInput = /** @type {HTMLInputElement} */ (document.querySelector("input[name=token]"));
const fileInput = /** @type {HTMLInputElement} */ (document.querySelector("input[type=file]"));
const drop = /** @type {HTMLElement} */ (document.querySelector("#drop"));
const list = /** @type {HTMLOListElement} */ (document.querySelector("#uploads"));
const empty = /** @type {HTMLElement} */ (document.querySelector("#empty"));
const rowTemplate = /** @type {HTMLTemplateElement} */ (document.querySelector("#upload-row"));

/** The record's status, by its value (docs/contract.md). */
const STATUS_NAMES = { 1: "New", 2: "AIProcessing", 3: "AIProcessed", 6: "Error" };
/** What a row's state reads as. */
const STATE_TEXT = {
  hashing: "Computing its media ID",
  checking: "Asking the service for it",
  uploading: "Uploading",
  paused: "Paused",
  processing: "Detecting",
  done: "Done",
  error: "Failed",
};
/** What an error the service answered says, by status, when it came without a sentence of its own. */
const REFUSALS = {
  401: "Not signed in: the token is missing, expired or not one this service takes.",
  413: "The file is too large for this service.",
  415: "This type of file is not accepted: the service takes images and videos.",
  507: "The service is out of storage space; try again later.",
};

// ---------------------------------------------------------------------------------------------
// The upload, through media-intake/browser.

/**
 * Uploads `file` (or skips it when the service proves to have it) and follows its detection to its
 * end; resolves with the last answer, whose `skipped` says whether the bytes were sent. `control`
 * receives pause, resume and cancel; the other callbacks are uploadMedia's.
 */
async function upload(file, { token, mediaId, onState, onProgress, onAnswer, control }) {
  const started = intake.uploadMedia(file, {
    endpoint: "/files",
    possessionUrl: "/possession",
    token,
    mediaId,
    Upload: globalThis.tus.Upload,
    onState,
    onProgress,
    onUpdate: onAnswer,
  });
  control(started);
  return started.done;
}

// ---------------------------------------------------------------------------------------------
// The rows.

/** A row for `file`, at the top of the list, and its parts. */
function addRow(file) {
  const element = /** @type {HTMLLIElement} */ (rowTemplate.content.firstElementChild.cloneNode(true));
  const part = (selector) => element.querySelector(selector);
  const row = {
    element,
    name: part(".name"),
    state: part(".state"),
    mediaId: part(".media-id"),
    status: part(".status"),
    statusFact: part(".status-fact"),
    transfer: part(".transfer"),
    bar: part(".bar"),
    rate: part(".rate"),
    detections: part(".detections"),
    message: part(".message"),
    pause: part(".pause"),
    resume: part(".resume"),
    cancel: part(".cancel"),
    controls: undefined,
    /** Set by Cancel: whether the upload was removed. */
    cancelled: undefined,
    /** The bytes sent, as the rate line says them without a rate. */
    sentText: "",
    /** Set once the upload is stored (detection followed): the row never says the upload failed. */
    stored: false,
    /** While the row waits for the network: what ends the wait on Cancel. */
    onCancel: undefined,
  };
  row.name.textContent = file.name;
  row.name.title = file.name;
  part(".size").textContent = formatBytes(file.size);
  row.bar.max = Math.max(file.size, 1);
  row.bar.setAttribute("aria-label", `Upload of ${file.name}`);
  row.pause.setAttribute("aria-label", `Pause the upload of ${file.name}`);
  row.resume.setAttribute("aria-label", `Resume the upload of ${file.name}`);
  row.cancel.setAttribute("aria-label", `Cancel the upload of ${file.name}`);
  // The button pressed hides: focus goes to the one that takes its place (Resume, Pause), or to the row.
  row.pause.addEventListener("click", () => {
    row.controls?.pause();
    setState(row, "paused");
    row.resume.focus();
  });
  row.resume.addEventListener("click", () => {
    // Offline, there is nothing to resume yet: the row resumes by itself once the network is back.
    if (row.onCancel) return;
    row.controls?.resume();
    setState(row, "uploading");
    row.pause.focus();
  });
  row.cancel.addEventListener("click", () => {
    row.cancel.disabled = true;
    row.element.focus();
    row.cancelled = removeUpload(row);
    // A row waiting for the network ends now: its upload is not resumed once it is back.
    row.onCancel?.();
  });
  list.prepend(element);
  empty.hidden = true;
  return row;
}

function setState(row, state) {
  row.element.dataset.state = state;
  row.state.textContent = STATE_TEXT[state] ?? state;
  const transferring = state === "uploading" || state === "paused";
  row.pause.hidden = state !== "uploading";
  row.resume.hidden = state !== "paused";
  row.cancel.hidden = !(transferring || state === "hashing" || state === "checking");
  // A rate and a time left hold only while bytes go: any other state shows the bytes alone.
  if (state !== "uploading" && row.sentText) row.rate.textContent = row.sentText;
}

function setMediaId(row, id) {
  row.element.dataset.mediaId = id;
  row.mediaId.textContent = id;
}

/** What an answer says: where the record stands in its lifecycle, and the detections. */
function showAnswer(row, answer) {
  const media = answer?.media ?? {};
  if (typeof media.id === "string") setMediaId(row, media.id);
  if (typeof media.mediaStatus === "number") showStatus(row, media.mediaStatus);
  const detections = answer?.detections ?? answer?.detection?.detections;
  if (Array.isArray(detections)) {
    row.detections.replaceChildren(
      ...detections.map((detection) => {
        const item = document.createElement("li");
        const confidence = document.createElement("span");
        item.textContent = String(detection.label ?? "object");
        confidence.textContent = typeof detection.confidence === "number" ? `${Math.round(detection.confidence * 100)}%` : "";
        item.append(" ", confidence);
        return item;
      }),
    );
  }
}

/** The lifecycle New -> AIProcessing -> AIProcessed (or Error), the record's status marked in it. */
function showStatus(row, value) {
  const name = STATUS_NAMES[value] ?? `Status ${value}`;
  row.element.dataset.status = name;
  row.statusFact.hidden = false;
  const steps = ["New", "AIProcessing", name === "Error" ? "Error" : "AIProcessed"];
  // A later stage of the annotations service's own: past the three.
  const at = steps.includes(name) ? steps.indexOf(name) : steps.length;
  row.status.replaceChildren(
    ...steps.map((step, index) => {
      const item = document.createElement("li");
      item.textContent = step;
      const last = index === steps.length - 1;
      item.className = index < at ? "past" : index > at ? "next" : !last ? "current" : name === "Error" ? "failed" : "past";
      if (index === at) item.setAttribute("aria-current", "step");
      return item;
    }),
    ...(at === steps.length ? [Object.assign(document.createElement("li"), { textContent: name, className: "past" })] : []),
  );
}

/** The progress bar, the speed over the last few seconds and the time left. */
function progressOf(row) {
  let samples = [];
  return (sent, total) => {
    row.transfer.hidden = false;
    row.bar.max = Math.max(total, 1);
    row.bar.value = sent;
    const now = performance.now();
    samples = [...samples.filter(([at]) => now - at < 3000), [now, sent]];
    const [firstAt, firstSent] = samples[0];
    const speed = now - firstAt > 250 ? ((sent - firstSent) * 1000) / (now - firstAt) : undefined;
    row.sentText = `${formatBytes(sent)} of ${formatBytes(total)}`;
    const parts = [row.sentText];
    if (row.element.dataset.state === "uploading" && speed !== undefined && speed > 0) parts.push(`${formatBytes(speed)}/s`, `${formatDuration((total - sent) / speed)} left`);
    row.rate.textContent = parts.join(" · ");
  };
}

/** The row of one file: its media ID, then its upload, until done or failed. */
async function track(file) {
  const row = addRow(file);
  setState(row, "hashing");
  try {
    setMediaId(row, await intake.computeMediaId(file));
  } catch (error) {
    return fail(row, `Could not read the file: ${error?.message ?? error}`);
  }
  if (row.cancelled) return fail(row, "Cancelled. Nothing was sent.", { cancelled: true });
  // A pasted "Bearer eyJ…" is the token too: the page adds the prefix itself.
  const token = tokenInput.value.trim().replace(/^Bearer\s+/i, "");
  if (!token) return fail(row, "No token: paste one in the Token field above, then choose the file again. Nothing was sent.");
  const id = row.element.dataset.mediaId;
  // The same file in another row, still under way: two uploads of one media ID would cut each
  // other's requests. This row waits for that one to end, then goes on (skipped, when it stored it).
  while (inFlight.has(id)) {
    setState(row, "checking");
    row.message.textContent = "The same file is being uploaded in another row: this one goes on once that one ends.";
    const cancelledMeanwhile = await Promise.race([inFlight.get(id).then(() => false), new Promise((resolve) => (row.onCancel = () => resolve(true)))]);
    row.onCancel = undefined;
    if (cancelledMeanwhile) return fail(row, "Cancelled. Nothing was sent.", { cancelled: true });
  }
  const sending = send(row, file, token);
  inFlight.set(id, sending);
  await sending.finally(() => inFlight.get(id) === sending && inFlight.delete(id));
}

/** The sends under way, by media ID. */
const inFlight = new Map();

/** Sends the file of `row`; a drop of the network while offline waits for it to come back, then resumes. */
async function send(row, file, token) {
  row.message.textContent = "";
  try {
    const answer = await upload(file, {
      token,
      mediaId: row.element.dataset.mediaId,
      // The row's own ends: "done" once it shows the answer, "error" once it says why.
      onState: (state) => {
        // From "processing" on, the media are stored: nothing after it is an upload that failed.
        if (state === "processing") row.stored = true;
        if (state !== "done" && state !== "error") setState(row, state);
      },
      onProgress: progressOf(row),
      onAnswer: (answer) => showAnswer(row, answer),
      control: (controls) => (row.controls = controls),
    });
    finish(row, answer);
  } catch (error) {
    if (row.cancelled) return cancelled(row);
    if (row.stored) return storedUnknown(row, error, token);
    if (navigator.onLine === false) {
      setState(row, "paused");
      row.resume.hidden = true;
      row.message.textContent = "Offline: the upload resumes where it stopped when the connection is back.";
      // Back online, it resumes; cancelled meanwhile, it never does.
      const cancelledOffline = await new Promise((resolve) => {
        const online = () => resolve(false);
        window.addEventListener("online", online, { once: true });
        row.onCancel = () => {
          window.removeEventListener("online", online);
          resolve(true);
        };
      });
      row.onCancel = undefined;
      return cancelledOffline ? cancelled(row) : send(row, file, token);
    }
    fail(row, messageOf(error));
  }
}

/**
 * A stored upload whose detection could not be followed to its end. Polls that went unanswered
 * (DetectionStatusUnknownError: the service or the network down) are tried again, once online,
 * every half minute, until the state can be read; any other refusal (a token expired meanwhile)
 * ends the row as stored, its state not known.
 */
async function storedUnknown(row, error, token) {
  if (!(error instanceof intake.DetectionStatusUnknownError)) {
    row.element.dataset.outcome = "status-unknown";
    setState(row, "done");
    row.state.textContent = "Stored";
    row.message.textContent = `Stored: the media are kept. The state of their detection could not be read: ${messageOf(error)} Choose the file again later to see it.`;
    return;
  }
  setState(row, "processing");
  row.message.textContent = "Stored: the media are kept. The state of their detection cannot be read right now (the service or the network is down); it is shown here once it can be.";
  await new Promise((resolve) => {
    const retry = setTimeout(resolve, 30_000);
    if (navigator.onLine !== false) return;
    clearTimeout(retry);
    window.addEventListener("online", resolve, { once: true });
  });
  try {
    const answer = await intake.followDetection(error.answer, { token, onUpdate: (body) => showAnswer(row, body) });
    row.message.textContent = "";
    finish(row, answer);
  } catch (again) {
    return storedUnknown(row, again, token);
  }
}

/** Removes the row's upload at the service: settles with whether it was removed (nothing started counts as removed). */
function removeUpload(row) {
  return Promise.resolve(row.controls?.cancel()).then(
    () => true,
    () => false,
  );
}

/**
 * The end of a cancelled row. The upload is stopped for good; its partial upload is removed at the
 * service, and while the service cannot be reached (offline), once it can, if this page is still
 * open (else it expires there).
 */
async function cancelled(row) {
  if (await row.cancelled) return fail(row, "Cancelled. Nothing of it was kept.", { cancelled: true });
  if (navigator.onLine !== false) return fail(row, "Cancelled. Its partial upload could not be removed at the service; it expires there.", { cancelled: true });
  fail(row, "Cancelled. Offline: its partial upload is removed at the service once the connection is back (if this page is closed first, it expires there).", { cancelled: true });
  await new Promise((resolve) => window.addEventListener("online", resolve, { once: true }));
  row.cancelled = removeUpload(row);
  return cancelled(row);
}

function finish(row, answer) {
  showAnswer(row, answer);
  row.transfer.hidden = false;
  row.bar.value = row.bar.max;
  row.sentText = answer.skipped ? "Nothing sent" : `${formatBytes(row.bar.max)} sent`;
  row.rate.textContent = row.sentText;
  const failed = answer.detection?.state === "failed" || answer.media?.mediaStatus === 6;
  if (failed) return fail(row, `Detection failed: ${plain(answer.detection?.error?.message) || "the record is in Error."}`);
  if (answer.skipped) row.message.textContent = "Already there: the service has this file, so it was not uploaded again.";
  else if (!answer.media?.userId && answer.media?.created === false) row.message.textContent = "Already stored under another user's record: its detections are not shown here.";
  setState(row, "done");
}

/** The row's end in state "error", saying why; a user's cancel reads "Cancelled", in a neutral tone. */
function fail(row, message, { cancelled = false } = {}) {
  row.message.textContent = message;
  setState(row, "error");
  if (cancelled) {
    row.element.dataset.outcome = "cancelled";
    row.state.textContent = "Cancelled";
  }
}

/** An error in plain words, with its HTTP status: the helpers' own sentence, or one of ours by status. */
function messageOf(error) {
  const status = Number(error?.status ?? error?.originalResponse?.getStatus?.() ?? 0);
  const said = plain(error?.text) || plain(bodyMessage(error?.originalResponse?.getBody?.()));
  if (status) {
    const text = said || REFUSALS[status] || (status >= 500 ? "The service failed; try again later." : `The service answered ${status}.`);
    const hint = status === 401 ? " Paste a valid token above, then choose the file again." : "";
    return `${text}${hint} (HTTP ${status})`;
  }
  const text = said || plain(error?.message);
  return text ? `The upload failed: ${text}` : "The upload failed.";
}

function bodyMessage(body) {
  try {
    return JSON.parse(body)?.error?.message;
  } catch {
    return undefined;
  }
}

/** A message as plain text: nothing that looks like a JSON body, never more than a few lines. */
function plain(text) {
  if (typeof text !== "string") return "";
  const trimmed = text.trim();
  if (/^[[{]/.test(trimmed)) return plain(bodyMessage(trimmed));
  return trimmed.length > 400 ? `${trimmed.slice(0, 400)}…` : trimmed;
}

function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return "some time";
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

/** An unsigned token for `sub`, valid an hour: what a service without JWT_SECRET decodes (development only). */
function devToken(sub) {
  const part = (value) =>
    btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(value))))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=+$/, "");
  return `${part({ alg: "none", typ: "JWT" })}.${part({ sub, exp: Math.floor(Date.now() / 1000) + 3600 })}.`;
}

// ---------------------------------------------------------------------------------------------
// Choosing files.

function chosen(files) {
  for (const file of files) void track(file);
}

fileInput.addEventListener("change", () => {
  chosen([...(fileInput.files ?? [])]);
  // The same file chosen again is a change too.
  fileInput.value = "";
});
// Files dropped anywhere on the page (not opened by the browser in its place); the drop zone lights up.
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
}
document.addEventListener("dragleave", (event) => event.relatedTarget === null && drop.classList.remove("over"));
document.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  chosen([...(event.dataTransfer?.files ?? [])]);
});
document.querySelector("#make-dev-token")?.addEventListener("click", () => {
  const user = /** @type {HTMLInputElement} */ (document.querySelector("#dev-user")).value.trim() || "alice";
  tokenInput.value = devToken(user);
});
document.documentElement.dataset.ready = "true";
