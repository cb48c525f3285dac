// The users page (add, role, disable/enable, password, delete) and one user's page with its
// grants.

import { ApiError, api, messageOf, session } from "./api.js";
import { confirmDialog, formDialog } from "./dialog.js";
import { add, append, clear, errorBox, h, loading, note, table, toast } from "./dom.js";
import { byteOrder, formatTime } from "./format.js";
import { explainForm, grantsEditor } from "./grants.js";
import { link, pageHeader } from "./page.js";

const ROLES = ["user", "admin"];

export async function pageUsers(m) {
  add(m, pageHeader("Users"));
  const addStatus = h("p", { "aria-live": "polite" });
  const uname = h("input", { id: "new-user", autocomplete: "off", required: true });
  const upass = h("input", { id: "new-password", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const urole = h("select", { id: "new-role" }, ROLES.map((r) => h("option", { value: r }, r)));
  const addButton = h("button", { type: "submit", class: "primary" }, "Add user");
  const form = h(
    "form",
    { class: "row", "aria-label": "Add a user" },
    h("label", { for: "new-user" }, "Username", uname),
    h("label", { for: "new-password" }, "Password (8–72 bytes)", upass),
    h("label", { for: "new-role" }, "Role", urole),
    addButton,
  );
  const listBox = h("div", {});
  add(m, h("h2", {}, "Add a user"), form, addStatus, h("h2", {}, "Accounts"), listBox);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    addButton.disabled = true;
    addStatus.className = "muted";
    addStatus.textContent = "Adding…";
    try {
      const u = await api("POST", "/users", { username: uname.value, password: upass.value, role: urole.value });
      addStatus.className = "ok";
      add(clear(addStatus), "Added " + u.username + ". ", link("user", { name: u.username }, "Give " + u.username + " grants"));
      uname.value = upass.value = "";
      await renderUserList(listBox);
    } catch (err) {
      addStatus.className = "error";
      addStatus.textContent = messageOf(err);
    } finally {
      addButton.disabled = false;
    }
  });
  await renderUserList(listBox);
}

async function renderUserList(box) {
  add(clear(box), loading("Loading users…"));
  const users = await api("GET", "/users");
  users.sort((a, b) => byteOrder(a.username, b.username));
  const rows = users.map((u) => userRow(u, () => renderUserList(box), box));
  add(clear(box), h("p", {}, users.length + " accounts"), table(["User", "Role", "Status", "Created", "Actions"], rows));
}

// What ends at once when an account is disabled or deleted, and what only when registry tokens
// it already holds expire (token mode: REGISTRY_TOKEN_TTL + the registry's 60 s leeway).
async function revocationNote() {
  let bound = null;
  try {
    bound = (await api("GET", "/grants")).registry_token_bound_seconds;
  } catch (_) {
    bound = null;
  }
  const now = "Its password and API tokens stop working at once, and it gets no new registry tokens.";
  if (bound === 0) return h("p", { id: "dialog-revocation" }, now + " The registry checks the password itself, so that is at once there too.");
  const when = typeof bound === "number" ? "for up to " + formatSeconds(bound) : "until they expire (REGISTRY_TOKEN_TTL + 60 s)";
  return h("p", { id: "dialog-revocation" }, now + " Registry tokens it already holds keep working " + when + ": the registry checks them without asking this service.");
}

function formatSeconds(total) {
  const m = Math.floor(total / 60);
  const s = total % 60;
  if (!m) return s + " s";
  return m + " min" + (s ? " " + s + " s" : "");
}

function userRow(u, reload, box) {
  const service = u.role === "service";
  const actions = h("td", {});
  const act = async (what, fn) => {
    try {
      await fn();
      toast(what);
      await reload();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) box.prepend(errorBox(err));
    }
  };
  if (!service) {
    const roleSel = h(
      "select",
      { "aria-label": "Role of " + u.username },
      ROLES.map((r) => h("option", { value: r, selected: r === u.role }, r)),
    );
    const roleBtn = h("button", { type: "button", class: "small" }, "Set role");
    roleBtn.addEventListener("click", () =>
      act("Role of " + u.username + " is now " + roleSel.value + ".", () => api("PUT", "/users/" + encodeURIComponent(u.username) + "/role", { role: roleSel.value })),
    );
    const toggle = h("button", { type: "button", class: "small" }, u.disabled ? "Enable" : "Disable");
    toggle.setAttribute("aria-label", (u.disabled ? "Enable " : "Disable ") + u.username);
    toggle.addEventListener("click", async () => {
      const path = "/users/" + encodeURIComponent(u.username) + (u.disabled ? "/enable" : "/disable");
      if (u.disabled) return act(u.username + " enabled.", () => api("POST", path));
      const note = await revocationNote();
      const ok = await confirmDialog("Disable user?", [h("p", {}, "Disable the account ", h("strong", {}, u.username), "?"), note], "Disable " + u.username);
      if (ok) act(u.username + " disabled.", () => api("POST", path));
    });
    const pw = h("button", { type: "button", class: "small", "aria-label": "Set password of " + u.username }, "Password…");
    pw.addEventListener("click", async () => {
      const fields = [{ name: "password", label: "New password for " + u.username, type: "password", autocomplete: "new-password" }];
      if (u.username === session.user) fields.unshift({ name: "current_password", label: "Your current password", type: "password", autocomplete: "current-password" });
      const v = await formDialog("Set password", fields, "Set password");
      if (v) act("Password of " + u.username + " changed.", () => api("PUT", "/users/" + encodeURIComponent(u.username) + "/password", v));
    });
    const del = h("button", { type: "button", class: "small danger", "aria-label": "Delete " + u.username }, "Delete");
    del.addEventListener("click", async () => {
      const note = await revocationNote();
      const ok = await confirmDialog("Delete user?", [h("p", {}, "Delete the account ", h("strong", {}, u.username), " and its grants?"), note], "Delete " + u.username);
      if (ok) act(u.username + " deleted.", () => api("DELETE", "/users/" + encodeURIComponent(u.username)));
    });
    append(actions, [h("span", { class: "row" }, roleSel, roleBtn, toggle, pw, del)]);
  } else {
    add(actions, h("span", { class: "muted" }, "service account (protected)"));
  }
  return h(
    "tr",
    { "data-user": u.username },
    h("th", { scope: "row" }, service ? u.username : link("user", { name: u.username }, u.username)),
    h("td", {}, u.role),
    h("td", {}, u.disabled ? "disabled" : "enabled"),
    h("td", {}, formatTime(u.created_at)),
    actions,
  );
}

export async function pageUser(m, params) {
  const name = params.get("name") || "";
  add(m, h("p", {}, link("users", null, "← Users")), pageHeader("User " + name));
  const u = await api("GET", "/users/" + encodeURIComponent(name));
  add(m, 
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Role"),
      h("dd", {}, u.role),
      h("dt", {}, "Status"),
      h("dd", {}, u.disabled ? "disabled" : "enabled"),
      h("dt", {}, "Created"),
      h("dd", {}, formatTime(u.created_at)),
    ),
    h("h2", {}, "Grants"),
  );
  if (u.role === "admin") add(m, note("Admins may do everything everywhere; grants matter once the role is user."));
  try {
    const g = await api("GET", "/users/" + encodeURIComponent(name) + "/grants");
    add(m, 
      grantsEditor("user-grants", g.grants, async (grants) => {
        const r = await api("PUT", "/users/" + encodeURIComponent(name) + "/grants", { grants });
        return r.grants || [];
      }),
    );
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) add(m, note("Grants are not available on this server (GET /users/{user}/grants answered 404)."));
    else add(m, errorBox(err));
  }
  add(m, h("h2", {}, "What may " + name + " do?"), explainForm(name));
}
