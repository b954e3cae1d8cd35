export {
  computeMediaId,
  computeMediaIdSync,
  computeVirtualMediaId,
  type ComputeMediaIdOptions,
  type MediaIdSource,
} from "./compute.ts";
export { isMediaId, isVirtualMediaId, type MediaId, normalizeMediaId, type NormalizeMediaIdOptions } from "./format.ts";
export { initMediaIdHasher } from "./hasher.ts";
