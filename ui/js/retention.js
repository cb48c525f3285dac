// The retention page: edit the policies (JSON), make a plan, review it grouped by repository
// with the reason for every tag, and apply it. Same safety rules as every page: API text
// reaches the page only as text.

import { api, messageOf } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { add, h, note, table, toast } from "./dom.js";
import { formatTime, shortDigest } from "./format.js";
import { pageHeader } from "./page.js";

const EXAMPLE = {
  policies: [
    {
      repositories: "team/**",
      protect: ["latest", "v[0-9]+(\\.[0-9]+)*"],
      rules: [{ newest_pushed: 10 }, { pulled_within: "30d" }],
    },
  ],
};

function planView(plan, onApply) {
  const box = h("section", { id: "retention-plan", "aria-label": "Plan" });
  const s = plan.summary;
  add(
    box,
    h("h2", {}, "Plan " + plan.id),
    h(
      "p",
      { id: "plan-summary" },
      `${s.repositories} repositories: ${s.kept} tags kept, ${s.delete} to delete. Expires ${formatTime(plan.expires_at)}. Making the plan changed nothing.`,
    ),
  );
  if (plan.repositories.length === 0) {
    add(box, note("No repository matches a policy: nothing would change."));
  }
  for (const r of plan.repositories) {
    const rows = [
      ...r.delete.map((i) => ["delete", i]),
      ...r.keep.map((i) => ["keep", i]),
    ].map(([what, i]) =>
      h(
        "tr",
        {},
        h("td", {}, i.tag),
        h("td", { class: "mono", title: i.digest }, shortDigest(i.digest)),
        h("td", { class: what === "delete" ? "error" : "ok" }, what),
        h("td", {}, i.reason),
      ),
    );
    const section = h("section", { class: "plan-repo", "aria-label": "Repository " + r.name });
    section.dataset.name = r.name;
    add(
      section,
      h("h3", {}, r.name + ` — ${r.delete.length} to delete, ${r.keep.length} kept`),
      table(["Tag", "Digest", "Decision", "Reason"], rows, "Tags of " + r.name),
    );
    add(box, section);
  }
  if (s.delete > 0) {
    const max = h("input", { id: "retention-max", type: "number", min: "1", max: "100000", value: "1000" });
    const apply = h("button", { type: "button", id: "retention-apply", class: "danger" }, "Apply plan");
    apply.addEventListener("click", () => onApply(plan, Number(max.value), apply));
    add(box, h("div", { class: "row" }, h("label", { for: "retention-max" }, "Delete at most", max), apply));
  }
  return box;
}

function resultView(report) {
  const row = (...cells) => h("tr", {}, cells.map((c) => h("td", {}, c)));
  const box = h("section", { id: "retention-result", "aria-label": "Result" });
  add(
    box,
    h("h2", {}, `Applied: ${report.deleted.length} deleted, ${report.skipped.length} skipped`),
    table(["Repository", "Tag", "Digest"], report.deleted.map((d) => row(d.name, d.tag, shortDigest(d.digest))), "Deleted tags"),
  );
  if (report.skipped.length > 0) {
    add(box, table(["Repository", "Tag", "Why it stayed"], report.skipped.map((d) => row(d.name, d.tag, d.reason)), "Skipped tags"));
  }
  add(box, note("Deleting tags frees no disk by itself: run a garbage collection next."));
  return box;
}

export async function pageRetention(m) {
  add(
    m,
    pageHeader("Retention"),
    h(
      "p",
      {},
      "Policies say which tags to keep; everything else in a matching repository is a candidate. Protect expressions always win, a tag with an unknown push time is kept, and a repository's last tag is never deleted. A plan changes nothing; applying re-checks every tag first.",
    ),
  );
  const current = await api("GET", "/retention");
  const text = h("textarea", { id: "retention-json", rows: "14", spellcheck: "false", class: "mono" });
  text.value = JSON.stringify(current.policies.length ? current : EXAMPLE, null, 2);
  const status = h("p", { id: "retention-status", "aria-live": "polite" });
  const save = h("button", { type: "button", id: "retention-save", class: "primary" }, "Save policies");
  const only = h("input", { id: "retention-only", autocomplete: "off", placeholder: "team/** (optional)" });
  const make = h("button", { type: "button", id: "retention-make" }, "Make a plan");
  const planBox = h("div", { id: "retention-plan-box" });
  add(
    m,
    h("h2", {}, "Policies"),
    h("label", { for: "retention-json", class: "block" }, "Policies (JSON)", text),
    h("div", { class: "row" }, save),
    status,
    h("h2", {}, "Plan"),
    h("div", { class: "row" }, h("label", { for: "retention-only" }, "Only repositories matching", only), make),
    planBox,
  );
  if (!current.policies.length) status.textContent = "No policies yet: the example above is not saved.";

  save.addEventListener("click", async () => {
    let body;
    try {
      body = JSON.parse(text.value);
    } catch (err) {
      status.className = "error";
      status.textContent = "Not valid JSON: " + err.message;
      return;
    }
    save.disabled = true;
    try {
      const saved = await api("PUT", "/retention", body);
      text.value = JSON.stringify(saved, null, 2);
      status.className = "ok";
      status.textContent = `Saved ${saved.policies.length} ${saved.policies.length === 1 ? "policy" : "policies"}.`;
    } catch (err) {
      status.className = "error";
      status.textContent = messageOf(err);
    } finally {
      save.disabled = false;
    }
  });

  const onApply = async (plan, max, button) => {
    const ok = await confirmDialog(
      "Apply plan " + plan.id + "?",
      [h("p", {}, `Up to ${Math.min(max, plan.summary.delete)} tags will be deleted; each is checked again first and kept if it no longer qualifies.`)],
      "Delete tags",
    );
    if (!ok) return;
    button.disabled = true;
    try {
      const report = await api("POST", "/retention/plans/" + plan.id + "/apply", { max_delete: max });
      planBox.replaceChildren(resultView(report));
      toast(`${report.deleted.length} tags deleted.`);
    } catch (err) {
      add(planBox, h("p", { class: "error" }, messageOf(err)));
    } finally {
      button.disabled = false;
    }
  };

  make.addEventListener("click", async () => {
    make.disabled = true;
    planBox.replaceChildren(h("p", { class: "muted" }, "Making a plan…"));
    try {
      const body = only.value.trim() ? { repositories: only.value.trim() } : {};
      const plan = await api("POST", "/retention/plans", body);
      planBox.replaceChildren(planView(plan, onApply));
    } catch (err) {
      planBox.replaceChildren(h("p", { class: "error" }, messageOf(err)));
    } finally {
      make.disabled = false;
    }
  });
}
