// The library's metrics. @opentelemetry/api 1.x has no proxy for meters: a meter got before an
// SDK calls `metrics.setGlobalMeterProvider` stays a no-op for good. So the instruments are made
// from the provider registered at the moment of use, and made again only when that provider is
// another one (no SDK: the API's no-op provider, whose no-op instruments are made once). The hot
// path then reads the global provider and compares it: no instrument and no attribute object is
// made per call (each set of attribute values is made once, from small fixed sets).
import type { Attributes, Counter, Histogram, Meter, MeterProvider } from "@opentelemetry/api";
import packageJson from "../../package.json" with { type: "json" };
import { ATTR, type IntakeVia, METRIC, SCOPE, type SettleResult, type StatusResult, type UploadOutcome } from "./names.ts";
import { otelApi } from "./peers.ts";

const api = otelApi.module;

interface Instruments {
  uploads: Counter;
  uploadSize: Histogram;
  uploadDuration: Histogram;
  statusChanges: Counter;
  processingDuration: Histogram;
  settles: Counter;
}

/** Seconds: from 5 ms (a refusal) to 10 min (a large upload, a long detection). */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Bytes: 1 KiB to 16 GiB, by fours. */
const BYTES = Array.from({ length: 13 }, (_, i) => 2 ** (10 + 2 * i));

/** Entries waiting to be settled per journal (by location), as the last settling pass of this process left them. */
const pendingByJournal = new Map<string, number>();
let passesSeen = false;

function createInstruments(meter: Meter): Instruments {
  meter.createObservableGauge(METRIC.journalPending, { unit: "{entry}", description: "Journal entries waiting to be settled, as this process's last settling pass left them." }).addCallback((result) => {
    if (!passesSeen) return;
    let total = 0;
    for (const count of pendingByJournal.values()) total += count;
    result.observe(total);
  });
  return {
    uploads: meter.createCounter(METRIC.uploads, { unit: "{upload}", description: "Uploads that went through an intake, by how they ended and their entry point." }),
    uploadSize: meter.createHistogram(METRIC.uploadSize, { unit: "By", description: "Size of the uploads stored.", advice: { explicitBucketBoundaries: BYTES } }),
    uploadDuration: meter.createHistogram(METRIC.uploadDuration, { unit: "s", description: "Time of an intake, from the call to its end.", advice: { explicitBucketBoundaries: SECONDS } }),
    statusChanges: meter.createCounter(METRIC.statusChanges, { unit: "{change}", description: "Status changes of media records, by status and by whether they were written now." }),
    processingDuration: meter.createHistogram(METRIC.processingDuration, { unit: "s", description: "Time of a tracked run, from its start to its final status.", advice: { explicitBucketBoundaries: SECONDS } }),
    settles: meter.createCounter(METRIC.settles, { unit: "{entry}", description: "Journal entries the settling took up, by what became of them." }),
  };
}

let meterProvider: MeterProvider | undefined;
let instruments: Instruments | undefined;

/** The instruments of the provider registered now; `undefined` without the API. */
function current(): Instruments | undefined {
  if (api === undefined) return undefined;
  const provider = api.metrics.getMeterProvider();
  if (provider !== meterProvider || instruments === undefined) {
    meterProvider = provider;
    instruments = createInstruments(provider.getMeter(SCOPE, packageJson.version));
  }
  return instruments;
}

/** One attribute object per value (or pair of values), made the first time it is asked for. */
function attributesOf(key: string): (value: string) => Attributes {
  const made = new Map<string, Attributes>();
  return (value) => {
    let attributes = made.get(value);
    if (!attributes) made.set(value, (attributes = { [key]: value }));
    return attributes;
  };
}
function attributePairsOf(first: string, second: string): (a: string, b: string) => Attributes {
  const made = new Map<string, Map<string, Attributes>>();
  return (a, b) => {
    let inner = made.get(a);
    if (!inner) made.set(a, (inner = new Map()));
    let attributes = inner.get(b);
    if (!attributes) inner.set(b, (attributes = { [first]: a, [second]: b }));
    return attributes;
  };
}
const uploadAttributes = attributePairsOf(ATTR.outcome, ATTR.intake);
const viaAttributes = attributesOf(ATTR.intake);
const statusAttributes = attributePairsOf(ATTR.status, ATTR.result);
const finalStatusAttributes = attributesOf(ATTR.status);
const settleAttributes = attributesOf(ATTR.result);

/** One upload through an intake: how it ended, how long it took, and its size once stored. */
export function recordUpload(via: IntakeVia, outcome: UploadOutcome, seconds: number, size: number | undefined): void {
  const metrics = current();
  if (!metrics) return;
  const attributes = uploadAttributes(outcome, via);
  metrics.uploads.add(1, attributes);
  metrics.uploadDuration.record(seconds, attributes);
  if (size !== undefined) metrics.uploadSize.record(size, viaAttributes(via));
}

/** One status change of a record (`status` by name: New, AIProcessing, AIProcessed, Error). */
export function recordStatusChange(status: string, result: StatusResult): void {
  current()?.statusChanges.add(1, statusAttributes(status, result));
}

/** One tracked run, by the status it ended with (AIProcessing: a try its queue repeats). */
export function recordProcessing(status: string, seconds: number): void {
  current()?.processingDuration.record(seconds, finalStatusAttributes(status));
}

/** `count` journal entries one settling took up. */
export function recordSettle(result: SettleResult, count: number): void {
  if (count > 0) current()?.settles.add(count, settleAttributes(result));
}

/** The entries of the journal at `location` left waiting to be settled after a pass. */
export function setJournalPending(location: string, count: number): void {
  if (api === undefined) return;
  passesSeen = true;
  if (count > 0) pendingByJournal.set(location, count);
  else pendingByJournal.delete(location);
  // The gauge is observed once instruments exist for the provider registered now.
  current();
}
