// The sign-in form. The request itself is signIn in api.js; what happens after a sign-in (the
// banners, the page) is the shell's, passed in as `onSignedIn`.

import { messageOf, signIn } from "./api.js";
import { $, add, clear, h } from "./dom.js";

// `message` says why the form shows (signed out, session ended); empty on a first visit.
export function renderLogin(message, onSignedIn) {
  $("#nav").hidden = true;
  $("#who").hidden = true;
  document.title = "Sign in · registry-admin";
  const status = h("p", { id: "login-status", role: "alert", class: message ? "error" : "" }, message);
  const user = h("input", { id: "login-user", name: "username", autocomplete: "username", required: true });
  const pass = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { "aria-labelledby": "login-title" },
    h("label", { for: "login-user" }, "Username", user),
    h("label", { for: "login-password" }, "Password", pass),
    submit,
    status,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    status.className = "muted";
    status.textContent = "Signing in…";
    try {
      await signIn(user.value, pass.value);
      pass.value = "";
      await onSignedIn();
    } catch (err) {
      status.className = "error";
      status.textContent = messageOf(err);
      submit.disabled = false;
    }
  });
  const box = h("div", { class: "login" }, h("h1", { id: "login-title" }, "Sign in"), form);
  add(clear($("#main")), box);
  user.focus();
}
