// The audit page: filters, cursor paging and the hash chain's verify status. Audit fields can
// hold anything a registry event carried, so they reach the page only as text.

import { api, messageOf } from "./api.js";
import { add, h } from "./dom.js";
import { formatTime, shortDigest } from "./format.js";
import { pageHeader } from "./page.js";

const AUDIT_COLUMNS = ["Time", "Action", "Actor", "Outcome", "Source", "User", "Image", "Tag", "Digest", "Status", "Detail"];

export async function pageAudit(m, params) {
  add(m, pageHeader("Audit"));
  const chain = h("p", { id: "chain-status", "aria-live": "polite" }, "Checking the hash chain…");
  add(m, chain);
  api("GET", "/audit/verify")
    .then((v) => {
      chain.className = v.ok ? "ok" : "error";
      chain.textContent = v.ok
        ? "Hash chain intact: " + v.entries + " entries verified."
        : "Hash chain broken at " + (v.first_bad_line ? v.first_bad_line.file + " line " + v.first_bad_line.line : "an unknown line") + " (" + v.entries + " entries).";
    })
    .catch((err) => {
      chain.className = "error";
      chain.textContent = "Chain check failed: " + messageOf(err);
    });
  const fields = [
    ["user", "User"],
    ["image", "Image"],
    ["action", "Action"],
    ["since", "Since (RFC3339)"],
    ["until", "Until (RFC3339)"],
  ];
  const inputs = {};
  const form = h("form", { class: "row", "aria-label": "Audit filters" });
  for (const [k, label] of fields) {
    inputs[k] = h("input", { id: "audit-" + k, name: k, autocomplete: "off", value: params.get(k) || "", placeholder: k === "since" || k === "until" ? "2026-01-01T00:00:00Z" : null });
    add(form, h("label", { for: "audit-" + k }, label, inputs[k]));
  }
  inputs.outcome = h("select", { id: "audit-outcome", name: "outcome" }, ["", "success", "denied", "failure"].map((o) => h("option", { value: o, selected: (params.get("outcome") || "") === o }, o || "any")));
  add(form, h("label", { for: "audit-outcome" }, "Outcome", inputs.outcome), h("button", { type: "submit", class: "primary" }, "Apply filters"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = {};
    for (const k of Object.keys(inputs)) if (inputs[k].value.trim()) q[k] = inputs[k].value.trim();
    location.hash = "#/audit" + (Object.keys(q).length ? "?" + new URLSearchParams(q) : "");
  });
  const body = h("tbody", {});
  const more = h("button", { type: "button", id: "audit-more", hidden: true }, "Load older entries");
  const status = h("p", { id: "audit-status", "aria-live": "polite" });
  add(m, 
    form,
    status,
    h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Audit entries" }, h("table", { id: "audit-table" }, h("thead", {}, h("tr", {}, AUDIT_COLUMNS.map((c) => h("th", { scope: "col" }, c)))), body)),
    more,
  );
  const filters = new URLSearchParams();
  for (const k of ["user", "image", "action", "outcome", "since", "until"]) if (params.get(k)) filters.set(k, params.get(k));
  filters.set("limit", "50");
  let cursor = null;
  let shown = 0;
  const load = async () => {
    const q = new URLSearchParams(filters);
    if (cursor) q.set("cursor", cursor);
    more.disabled = true;
    status.textContent = "Loading…";
    try {
      const data = await api("GET", "/audit?" + q);
      for (const e of data.entries || []) {
        add(body, 
          h(
            "tr",
            {},
            h("td", {}, formatTime(e.time)),
            h("td", {}, e.action),
            h("td", { class: "actor" }, e.actor === "" ? "(anonymous)" : e.actor),
            h("td", {}, e.outcome),
            h("td", {}, e.source),
            h("td", {}, e.user || ""),
            h("td", {}, e.image || ""),
            h("td", {}, e.tag || ""),
            h("td", { class: "mono", title: e.digest || "" }, e.digest ? shortDigest(e.digest) : ""),
            h("td", {}, e.status === undefined || e.status === null ? "" : String(e.status)),
            // `repeats`: identical entries this one stands for (README, "Repeats written once").
            h("td", { class: "detail" }, [e.detail || "", e.repeats ? "(and " + e.repeats + " identical before it)" : ""].filter(Boolean).join(" ")),
          ),
        );
        shown++;
      }
      cursor = data.next_cursor || null;
      more.hidden = !cursor;
      status.textContent = shown + (shown === 1 ? " entry" : " entries") + (cursor ? " shown; older ones follow." : " — the end.");
    } catch (err) {
      status.className = "error";
      status.textContent = messageOf(err);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  await load();
}
