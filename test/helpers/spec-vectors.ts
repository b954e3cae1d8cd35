/** docs/contract.md "Media ID": content size (bytes `i % 251`) and its ID, copied here so the suite needs nothing outside the repository. */
export const specVectors: Array<[number, string]> = [
  [0, "34c96acdcadb1bbb"],
  [1, "a2443c71157cb676"],
  [3071, "5bb8336c5fc6365d"],
  [3072, "f9062671e8bfb6e1"],
  [1048583, "6a9b7ce7844aa871"],
];
