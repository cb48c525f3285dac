// My account: change one's own password, one's grants, and what one may do on a repository.

import { ApiError, api, messageOf, session } from "./api.js";
import { add, errorBox, h, note, table } from "./dom.js";
import { explainForm } from "./grants.js";
import { pageHeader } from "./page.js";

export async function pageAccount(m) {
  add(m, pageHeader("My account"), h("p", {}, "Signed in as ", h("strong", {}, session.user), session.isAdmin ? " (admin)." : " (user)."));
  const cur = h("input", { id: "own-current", type: "password", autocomplete: "current-password", required: true });
  const next = h("input", { id: "own-new", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const status = h("p", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "row", "aria-label": "Change my password" },
    h("label", { for: "own-current" }, "Current password", cur),
    h("label", { for: "own-new" }, "New password", next),
    h("button", { type: "submit" }, "Change password"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("PUT", "/users/" + encodeURIComponent(session.user) + "/password", { password: next.value, current_password: cur.value });
      status.className = "ok";
      status.textContent = "Password changed. Tokens issued before stop working: sign in again.";
      cur.value = next.value = "";
    } catch (err) {
      status.className = "error";
      status.textContent = messageOf(err);
    }
  });
  add(m, h("h2", {}, "Password"), form, status, h("h2", {}, "My grants"));
  try {
    const g = await api("GET", "/users/" + encodeURIComponent(session.user) + "/grants");
    const rows = (g.grants || []).map((x) => h("tr", {}, h("td", { class: "mono" }, x.repository), h("td", {}, x.actions.join(", "))));
    add(m, rows.length ? table(["Repository pattern", "Actions"], rows) : note(session.isAdmin ? "Admins may do everything everywhere." : "No grants of your own."));
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) add(m, note("Grants are not available on this server."));
    else add(m, errorBox(err));
  }
  add(m, h("h2", {}, "What may I do on a repository?"), explainForm(session.user));
}
