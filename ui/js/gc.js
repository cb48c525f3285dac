// The garbage collection page: start a dry or real run, watch it, and the history.

import { ApiError, api } from "./api.js";
import { refreshBanner } from "./banner.js";
import { confirmDialog } from "./dialog.js";
import { add, clear, errorBox, h, loading, note, table } from "./dom.js";
import { formatSize, formatTime } from "./format.js";
import { pageHeader, setPageTimer } from "./page.js";

function jobRow(j) {
  return h(
    "tr",
    { "data-job": j.id },
    h("td", { class: "mono" }, j.id),
    h("td", { class: "state" }, j.state),
    h("td", {}, j.dry_run ? "dry run" : "real run"),
    h("td", {}, j.untagged ? "yes" : "no"),
    h("td", {}, j.requested_by || ""),
    h("td", {}, formatTime(j.created_at)),
    h("td", {}, formatTime(j.finished_at)),
    h("td", { class: "num" }, String(j.manifests_deleted ?? "–")),
    h("td", { class: "num" }, String(j.blobs_deleted ?? "–")),
    h("td", { class: "num" }, formatSize(j.bytes_freed)),
    h("td", {}, j.error || ""),
  );
}

const JOB_COLUMNS = ["Job", "State", "Kind", "Untagged", "By", "Created", "Finished", "Manifests", "Blobs", "Freed", "Error"];
const FINISHED = new Set(["succeeded", "failed"]);

export async function pageGc(m) {
  add(m, pageHeader("Garbage collection"));
  let data;
  try {
    data = await api("GET", "/gc");
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      add(m, note("Garbage collection is not available on this server (GET /gc answered 404)."));
      return;
    }
    throw err;
  }
  const untagged = h("input", { type: "checkbox", id: "gc-untagged" });
  const dry = h("button", { type: "button", class: "primary", id: "gc-dry" }, "Start dry run");
  const real = h("button", { type: "button", class: "danger", id: "gc-real" }, "Start real run…");
  const status = h("div", { id: "gc-status", "aria-live": "polite" });
  const history = h("div", { id: "gc-history" });
  add(m, 
    h("p", {}, "A dry run reports what would be deleted and deletes nothing. A real run freezes writes (pushes and tag deletes) while it collects."),
    h("div", { class: "row" }, h("label", { class: "check", for: "gc-untagged" }, untagged, "Also delete untagged manifests"), dry, real),
    status,
    h("h2", {}, "History"),
    history,
  );
  const renderHistory = (jobs) => add(clear(history), jobs.length ? table(JOB_COLUMNS, jobs.map(jobRow)) : note("No jobs yet."));
  renderHistory(data.jobs || []);
  const watch = async (id) => {
    const j = await api("GET", "/gc/" + encodeURIComponent(id));
    add(clear(status), 
      h("p", { class: FINISHED.has(j.state) ? (j.state === "succeeded" ? "ok" : "error") : "muted", id: "gc-state", "data-state": j.state }, "Job " + j.id + ": " + j.state + (j.dry_run ? " (dry run)" : "")),
      FINISHED.has(j.state)
        ? h("p", {}, (j.dry_run ? "Would delete " : "Deleted ") + j.manifests_deleted + " manifests and " + j.blobs_deleted + " blobs, " + formatSize(j.bytes_freed) + ".")
        : loading("Working…"),
      j.error ? h("p", { class: "error" }, j.error) : null,
      (j.log || []).length ? h("details", {}, h("summary", {}, "Log (" + j.log.length + " lines)"), h("pre", { class: "log" }, j.log.join("\n"))) : null,
    );
    refreshBanner();
    if (FINISHED.has(j.state)) {
      const all = await api("GET", "/gc");
      renderHistory(all.jobs || []);
      return;
    }
    if (location.hash.startsWith("#/gc")) setPageTimer(() => watch(id).catch((err) => add(status, errorBox(err))), 1000);
  };
  const start = async (dryRun) => {
    dry.disabled = real.disabled = true;
    try {
      const j = await api("POST", "/gc", { dry_run: dryRun, untagged: untagged.checked });
      await watch(j.id);
    } catch (err) {
      add(clear(status), errorBox(err));
    } finally {
      dry.disabled = real.disabled = false;
    }
  };
  dry.addEventListener("click", () => start(true));
  real.addEventListener("click", async () => {
    const ok = await confirmDialog(
      "Start a real garbage collection?",
      [h("p", {}, "Blobs no tag reaches are deleted from storage for good. Pushes and tag deletes are refused until it ends.")],
      "Start real run",
    );
    if (ok) start(false);
  });
  const running = (data.jobs || []).find((j) => !FINISHED.has(j.state));
  if (running) await watch(running.id);
}
