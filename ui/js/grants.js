// The grants editor (a user's, everyone's, a robot's grants) and the "what may USER do on REPO"
// form: widgets the users, access, account and robots pages share.

import { api, messageOf, missingEndpoint } from "./api.js";
import { add, clear, errorBox, h, loading, note, table } from "./dom.js";

const ACTIONS = ["pull", "push", "delete"];

export function grantsEditor(idPrefix, initial, onSave) {
  let grants = (initial || []).map((g) => ({ repository: g.repository, actions: [...(g.actions || [])] }));
  const box = h("div", {});
  const status = h("p", { "aria-live": "polite" });
  const render = () => {
    const rows = grants.map((g, i) => {
      const rm = h("button", { type: "button", class: "small", "aria-label": "Remove grant on " + g.repository }, "Remove");
      rm.addEventListener("click", () => {
        grants.splice(i, 1);
        render();
      });
      return h("tr", {}, h("td", { class: "mono" }, g.repository), h("td", {}, g.actions.join(", ")), h("td", {}, rm));
    });
    add(clear(list), rows.length ? table(["Repository pattern", "Actions", ""], rows) : note("No grants."));
  };
  const list = h("div", { id: idPrefix + "-list" });
  const pattern = h("input", { id: idPrefix + "-pattern", placeholder: "team/**", autocomplete: "off" });
  const checks = ACTIONS.map((a) => h("input", { type: "checkbox", id: idPrefix + "-" + a, value: a, checked: a === "pull" }));
  const addGrant = h("button", { type: "button" }, "Add grant");
  const save = h("button", { type: "button", class: "primary", id: idPrefix + "-save" }, "Save grants");
  addGrant.addEventListener("click", () => {
    const repo = pattern.value.trim();
    const acts = checks.filter((c) => c.checked).map((c) => c.value);
    if (!repo || acts.length === 0) {
      status.className = "error";
      status.textContent = "A grant needs a repository pattern and at least one action.";
      return;
    }
    grants.push({ repository: repo, actions: acts });
    pattern.value = "";
    status.textContent = "Not saved yet.";
    status.className = "muted";
    render();
  });
  save.addEventListener("click", async () => {
    save.disabled = true;
    status.className = "muted";
    status.textContent = "Saving…";
    try {
      const saved = await onSave(grants);
      grants = saved.map((g) => ({ repository: g.repository, actions: [...g.actions] }));
      status.className = "ok";
      status.textContent = "Saved.";
      render();
    } catch (err) {
      status.className = "error";
      status.textContent = messageOf(err);
    } finally {
      save.disabled = false;
    }
  });
  const fs = h(
    "fieldset",
    {},
    h("legend", {}, "New grant"),
    h(
      "div",
      { class: "row" },
      h("label", { for: idPrefix + "-pattern" }, "Repository pattern", pattern),
      ACTIONS.map((a, i) => h("label", { class: "check", for: idPrefix + "-" + a }, checks[i], a)),
      addGrant,
    ),
  );
  add(box, list, fs, h("div", { class: "row" }, save), status);
  render();
  return box;
}

export function explainForm(fixedUser) {
  const user = h("input", { id: "explain-user", autocomplete: "off", value: fixedUser || "", readonly: fixedUser ? true : null });
  const repo = h("input", { id: "explain-repo", autocomplete: "off", placeholder: "team/app", required: true });
  const out = h("div", { id: "explain-result", "aria-live": "polite" });
  const go = h("button", { type: "submit" }, "Explain");
  const form = h(
    "form",
    { class: "row", "aria-label": "Explain access" },
    h("label", { for: "explain-user" }, "User", user),
    h("label", { for: "explain-repo" }, "Repository", repo),
    go,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    add(clear(out), loading("Asking…"));
    try {
      const a = await api("GET", "/users/" + encodeURIComponent(user.value) + "/access?repository=" + encodeURIComponent(repo.value));
      const acts = a.actions || [];
      add(clear(out), 
        h("p", {}, h("strong", {}, a.user), " may ", h("strong", {}, acts.length ? acts.join(", ") : "nothing"), " on ", h("code", {}, a.repository), "."),
        (a.reasons || []).length
          ? table(
              ["Because of", "Pattern", "Actions"],
              a.reasons.map((r) => h("tr", {}, h("td", {}, r.source), h("td", { class: "mono" }, r.pattern || "–"), h("td", {}, (r.actions || []).join(", ")))),
            )
          : null,
      );
    } catch (err) {
      if (missingEndpoint(err)) add(clear(out), note("Access explanations are not available on this server (the endpoint answered 404)."));
      else add(clear(out), errorBox(err));
    }
  });
  return h("div", {}, form, out);
}
