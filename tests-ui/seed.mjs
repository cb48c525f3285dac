// Test images without a network: `layout DIR` writes an OCI image layout (two single-arch images
// and a two-platform index, gzip layers of random bytes) for skopeo to push; `mount` copies one
// pushed image into many repositories through registry:2's own API (cross-repository blob mount
// + manifest PUT), which costs no upload per repository.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const sha = (b) => "sha256:" + createHash("sha256").update(b).digest("hex");

// A one-file tar (ustar header + content + two zero blocks), so layers are real archives.
function tarOf(name, content) {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(content.length.toString(8).padStart(11, "0") + "\0", 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(sum.toString(8).padStart(6, "0") + "\0 ", 148);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)]);
}

function layout(dir) {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (mediaType, bytes) => {
    const digest = sha(bytes);
    writeFileSync(join(blobs, digest.slice(7)), bytes);
    return { mediaType, digest, size: bytes.length };
  };
  const image = (arch, variant, layers, created) => {
    const ls = [];
    const diffs = [];
    for (let i = 0; i < layers; i++) {
      const tar = tarOf("file" + i + ".bin", randomBytes(2048 + i * 1024));
      diffs.push(sha(tar));
      ls.push(put("application/vnd.oci.image.layer.v1.tar+gzip", gzipSync(tar)));
    }
    const config = { architecture: arch, os: "linux", created, rootfs: { type: "layers", diff_ids: diffs }, config: {} };
    if (variant) config.variant = variant;
    const cfg = put("application/vnd.oci.image.config.v1+json", Buffer.from(JSON.stringify(config)));
    const manifest = { schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: ls };
    return put(OCI_MANIFEST, Buffer.from(JSON.stringify(manifest)));
  };
  const one = image("amd64", null, 2, "2026-03-01T10:00:00Z");
  const two = image("amd64", null, 3, "2026-04-01T10:00:00Z");
  const arm = image("arm64", "v8", 1, "2026-04-02T10:00:00Z");
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { ...two, platform: { os: "linux", architecture: "amd64" } },
      { ...arm, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
    ],
  };
  const idx = put(OCI_INDEX, Buffer.from(JSON.stringify(index)));
  const tagged = (d, tag) => ({ ...d, annotations: { "org.opencontainers.image.ref.name": tag } });
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [tagged(one, "one"), tagged(two, "two"), tagged(idx, "multi")] }),
  );
}

async function mount(registry, creds, from, tag, prefix, count) {
  const auth = { Authorization: "Basic " + Buffer.from(creds).toString("base64") };
  const r = await fetch(`${registry}/v2/${from}/manifests/${tag}`, { headers: { ...auth, Accept: OCI_MANIFEST } });
  if (!r.ok) throw new Error(`GET manifest ${from}:${tag}: ${r.status}`);
  const raw = Buffer.from(await r.arrayBuffer());
  const m = JSON.parse(raw);
  const digests = [m.config.digest, ...m.layers.map((l) => l.digest)];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const name = prefix + String(next++).padStart(4, "0");
      for (const d of digests) {
        const u = await fetch(`${registry}/v2/${name}/blobs/uploads/?mount=${d}&from=${from}`, { method: "POST", headers: auth });
        if (u.status !== 201) throw new Error(`mount ${d} into ${name}: ${u.status}`);
      }
      const p = await fetch(`${registry}/v2/${name}/manifests/${tag}`, { method: "PUT", headers: { ...auth, "Content-Type": OCI_MANIFEST }, body: raw });
      if (p.status !== 201) throw new Error(`PUT ${name}:${tag}: ${p.status}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "layout") layout(args[0]);
else if (cmd === "mount") await mount(args[0], args[1], args[2], args[3], args[4], Number(args[5]));
else {
  console.error("usage: seed.mjs layout DIR | mount REGISTRY USER:PASS FROM TAG PREFIX COUNT");
  process.exit(2);
}
