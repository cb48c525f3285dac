// A repository's tags and one image's details: digest, size, platforms, layers, pull commands,
// and the tag delete that names the sibling tags that stay.

import { api, enc, messageOf, session } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { add, clear, copyButton, errorBox, h, loading, note, table } from "./dom.js";
import { byteOrder, formatSize, formatTime, shortDigest } from "./format.js";
import { link, pageHeader } from "./page.js";

const DETAIL_CONCURRENCY = 6;

// Runs `work` on each item with at most `limit` in flight.
async function eachLimited(items, limit, work) {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i], i);
    }
  });
  await Promise.all(runners);
}

const detailCache = new Map();

async function details(name, tag) {
  const key = name + ":" + tag;
  if (!detailCache.has(key)) {
    const p = api("GET", "/images/" + enc(name) + "/-/tags/" + encodeURIComponent(tag));
    p.catch(() => detailCache.delete(key));
    detailCache.set(key, p);
  }
  return detailCache.get(key);
}

function platformsText(d) {
  return (d.platforms || [])
    .map((p) => [p.os, p.architecture, p.variant].filter(Boolean).join("/"))
    .join(", ");
}

function createdOf(d) {
  const times = (d.platforms || []).map((p) => p.created).filter(Boolean).sort();
  return times.length ? times[times.length - 1] : null;
}

export async function pageRepo(m, params) {
  const name = params.get("name") || "";
  add(m, h("p", {}, link("repos", null, "← Repositories")), pageHeader(name));
  const status = loading("Loading tags…");
  add(m, status);
  const data = await api("GET", "/images/" + enc(name) + "/-/tags");
  status.remove();
  const tags = (data.tags || []).slice().sort(byteOrder);
  add(m, h("p", { id: "tag-count" }, tags.length + (tags.length === 1 ? " tag" : " tags")));
  if (tags.length === 0) {
    add(m, note("This repository has no tags."));
    return;
  }
  const rows = tags.map((tag) => {
    const cells = {
      digest: h("td", { class: "mono" }, "…"),
      size: h("td", { class: "num" }, "…"),
      platforms: h("td", {}, "…"),
      created: h("td", {}, "…"),
    };
    const tr = h(
      "tr",
      { "data-tag": tag },
      h("th", { scope: "row" }, link("image", { name, tag }, tag)),
      cells.digest,
      cells.size,
      cells.platforms,
      cells.created,
    );
    return { tag, tr, cells };
  });
  add(m, table(["Tag", "Digest", "Size", "Platforms", "Created"], rows.map((r) => r.tr), "Tags of " + name + ", sorted"));
  eachLimited(rows, DETAIL_CONCURRENCY, async (r) => {
    try {
      const d = await details(name, r.tag);
      add(clear(r.cells.digest), h("span", { title: d.digest }, shortDigest(d.digest)), " ", copyButton(d.digest, "Copy digest of " + r.tag));
      r.cells.size.textContent = formatSize(d.size);
      r.cells.platforms.textContent = platformsText(d) || "–";
      r.cells.created.textContent = formatTime(createdOf(d));
    } catch (err) {
      r.cells.digest.textContent = messageOf(err);
      r.cells.digest.className = "error";
      r.cells.size.textContent = r.cells.platforms.textContent = r.cells.created.textContent = "–";
    }
  });
}

// ---------- image details ----------

async function mayDelete(name) {
  if (session.isAdmin) return true;
  try {
    const a = await api("GET", "/users/" + encodeURIComponent(session.user) + "/access?repository=" + encodeURIComponent(name));
    return (a.actions || []).includes("delete");
  } catch (_) {
    return false;
  }
}

export async function pageImage(m, params) {
  const name = params.get("name") || "";
  const tag = params.get("tag") || "";
  add(m, h("p", {}, link("repo", { name }, "← Tags of " + name)), pageHeader(name + ":" + tag));
  const status = loading("Loading image details…");
  add(m, status);
  const [d, canDelete] = await Promise.all([details(name, tag), mayDelete(name)]);
  status.remove();
  add(m, 
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Digest"),
      h("dd", {}, h("code", {}, d.digest), " ", copyButton(d.digest, "Copy digest")),
      h("dt", {}, "Media type"),
      h("dd", {}, d.media_type),
      h("dt", {}, "Size"),
      h("dd", {}, formatSize(d.size)),
      h("dt", {}, "Created"),
      h("dd", {}, formatTime(createdOf(d))),
    ),
    h("h2", {}, "Pull"),
    h("div", { class: "cmd" }, h("code", { id: "pull-tag" }, d.pull), copyButton(d.pull, "Copy pull command by tag")),
    h("div", { class: "cmd" }, h("code", { id: "pull-digest" }, d.pull_by_digest), copyButton(d.pull_by_digest, "Copy pull command by digest")),
    h("h2", {}, "Platforms"),
  );
  for (const p of d.platforms || []) {
    const label = [p.os, p.architecture, p.variant].filter(Boolean).join("/") || "unknown platform";
    add(m, 
      h("h3", {}, label + " · " + formatSize(p.size)),
      h("p", { class: "muted" }, "Manifest ", h("code", {}, shortDigest(p.digest)), p.created ? " · created " + formatTime(p.created) : ""),
      table(
        ["#", "Layer digest", "Size", "Media type"],
        (p.layers || []).map((l, i) =>
          h("tr", {}, h("td", { class: "num" }, String(i + 1)), h("td", { class: "mono", title: l.digest }, shortDigest(l.digest)), h("td", { class: "num" }, formatSize(l.size)), h("td", {}, l.media_type)),
        ),
        "Layers of " + label,
      ),
    );
  }
  if (!canDelete) return;
  const result = h("div", { id: "delete-result", "aria-live": "polite" });
  const del = h("button", { type: "button", class: "danger", id: "delete-tag" }, "Delete tag " + tag);
  del.addEventListener("click", () => deleteTag(name, tag, d.digest, del, result));
  add(m, h("h2", {}, "Delete"), h("p", {}, "Removes only this tag. Tags that share its digest stay."), del, result);
}

async function siblingsOf(name, tag, digest) {
  const data = await api("GET", "/images/" + enc(name) + "/-/tags");
  const others = (data.tags || []).filter((t) => t !== tag);
  const same = [];
  await eachLimited(others, DETAIL_CONCURRENCY, async (t) => {
    try {
      const d = await details(name, t);
      if (d.digest === digest) same.push(t);
    } catch (_) {
      // A tag that vanished meanwhile is no sibling.
    }
  });
  return same.sort(byteOrder);
}

async function deleteTag(name, tag, digest, button, result) {
  button.disabled = true;
  add(clear(result), loading("Looking for tags that share this digest…"));
  let siblings;
  try {
    siblings = await siblingsOf(name, tag, digest);
  } catch (err) {
    add(clear(result), errorBox(err));
    button.disabled = false;
    return;
  }
  clear(result);
  const body = [
    h("p", {}, "Delete the tag ", h("strong", {}, tag), " of ", h("strong", {}, name), "?"),
    siblings.length
      ? [h("p", {}, "These tags share its digest and will stay:"), h("ul", { id: "dialog-siblings" }, siblings.map((s) => h("li", {}, s)))]
      : h("p", {}, "No other tag shares its digest: the image will no longer be reachable by a tag."),
  ];
  const ok = await confirmDialog("Delete tag?", body, "Delete " + tag);
  button.disabled = false;
  if (!ok) {
    button.focus();
    return;
  }
  try {
    const r = await api("DELETE", "/images/" + enc(name) + "/-/tags/" + encodeURIComponent(tag));
    detailCache.delete(name + ":" + tag);
    button.remove();
    const kept = r.other_tags || [];
    add(result, 
      h("p", { class: "ok", role: "status" }, "Deleted " + r.name + ":" + r.tag + "."),
      kept.length
        ? [h("p", {}, "Still tagged with the same digest:"), h("ul", { id: "other-tags" }, kept.map((t) => h("li", {}, link("image", { name, tag: t }, t))))]
        : h("p", {}, "No other tag pointed at this digest."),
      h("p", {}, link("repo", { name }, "Back to the tags of " + name)),
    );
    result.querySelector("p").setAttribute("tabindex", "-1");
    result.querySelector("p").focus();
  } catch (err) {
    add(result, errorBox(err));
  }
}
