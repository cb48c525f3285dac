// How sizes, digests and times are shown, and the byte order lists are sorted in.

export function formatSize(n) {
  if (typeof n !== "number") return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? String(v) : v.toFixed(1)) + " " + units[i];
}

export function shortDigest(d) {
  if (typeof d !== "string") return "–";
  const [alg, hex] = d.split(":");
  return hex ? alg + ":" + hex.slice(0, 12) : d;
}

export function formatTime(t) {
  if (!t) return "–";
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function byteOrder(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
