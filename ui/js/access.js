// The access page: public patterns, grants for everyone, the users with grants, and the
// explain form.

import { ApiError, api, messageOf } from "./api.js";
import { add, errorBox, h, note, table } from "./dom.js";
import { byteOrder } from "./format.js";
import { explainForm, grantsEditor } from "./grants.js";
import { link, pageHeader } from "./page.js";

export async function pageAccess(m) {
  add(m, pageHeader("Access"));
  let g;
  try {
    g = await api("GET", "/grants");
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      add(m, note("Grants are not available on this server (GET /grants answered 404)."));
    } else {
      add(m, errorBox(err));
    }
  }
  if (g) {
    add(m, 
      note(
        g.enforced_by_registry
          ? "Token mode: registry:2 enforces these grants for docker, skopeo and podman too."
          : "htpasswd mode: these grants are enforced by this API only; at the registry every account may push, pull and delete.",
      ),
      h("h2", {}, "Public repositories"),
      h("p", { class: "muted" }, "Anyone, signed in or not, may pull repositories matching these patterns."),
      publicEditor(g.public || []),
      h("h2", {}, "Grants for everyone"),
      h("p", { class: "muted" }, "Every signed-in account has these."),
      grantsEditor("everyone", g.everyone || [], async (grants) => {
        const r = await api("PUT", "/grants/everyone", { grants });
        return r.grants || [];
      }),
      h("h2", {}, "Users with grants"),
    );
    const names = Object.keys(g.users || {}).sort(byteOrder);
    add(m, 
      names.length
        ? table(["User", "Grants"], names.map((n) => h("tr", {}, h("th", { scope: "row" }, link("user", { name: n }, n)), h("td", {}, g.users[n].map((x) => x.repository + " (" + x.actions.join(", ") + ")").join("; ")))))
        : note("No user has grants of its own."),
    );
  }
  add(m, h("h2", {}, "What may a user do on a repository?"), explainForm(null));
}

function publicEditor(initial) {
  const area = h("textarea", { id: "public-patterns", rows: "4", cols: "40" });
  area.value = initial.join("\n");
  const save = h("button", { type: "button", class: "primary" }, "Save public patterns");
  const status = h("p", { "aria-live": "polite" });
  save.addEventListener("click", async () => {
    const repositories = area.value.split("\n").map((s) => s.trim()).filter(Boolean);
    try {
      const r = await api("PUT", "/grants/public", { repositories });
      area.value = (r.repositories || []).join("\n");
      status.className = "ok";
      status.textContent = "Saved.";
    } catch (err) {
      status.className = "error";
      status.textContent = messageOf(err);
    }
  });
  return h("div", {}, h("label", { for: "public-patterns" }, "Patterns, one per line", area), h("div", { class: "row" }, save), status);
}
