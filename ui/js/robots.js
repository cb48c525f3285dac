// The robot accounts page of the web UI: a user's own robots, every robot for admins. Create
// (the secret is shown once, with copy buttons for it and for the `docker login` command),
// rotate, delete, grants, expiry badges, and a banner for robots expiring within 14 days.
//
// The same safety rules as every page: everything from the API reaches the page as text, never
// markup.

import { api, messageOf, session } from "./api.js";
import { confirmDialog } from "./dialog.js";
import { add, clear, copyButton, h, note, table, toast } from "./dom.js";
import { formatTime } from "./format.js";
import { grantsEditor } from "./grants.js";
import { pageHeader } from "./page.js";

const EXPIRING_DAYS = 14;
const DAY_MS = 24 * 3600 * 1000;

// Whether this server has robots (token mode), learnt from the banner's request: the nav shows
// the page only then, so htpasswd-mode users are not sent to a page that cannot work.
let available = false;
export function robotsAvailable() {
  return available;
}

// Called once when the API turns out to have robots: the shell (main.js) redraws the nav.
let onAvailable = () => {};
export function onRobotsAvailable(handler) {
  onAvailable = handler;
}

function daysLeft(robot, now) {
  if (!robot.expires_at) return null;
  return Math.floor((Date.parse(robot.expires_at) - now) / DAY_MS);
}

// The expiry as a badge: "never", "expired", "expires in N days" (warned within 14 days).
export function expiryBadge(robot, now = Date.now()) {
  const left = daysLeft(robot, now);
  if (left === null) return h("span", { class: "badge" }, "never expires");
  if (Date.parse(robot.expires_at) <= now) return h("span", { class: "badge bad", title: robot.expires_at }, "expired");
  const text = left < 1 ? "expires today" : left === 1 ? "expires in 1 day" : "expires in " + left + " days";
  return h("span", { class: left < EXPIRING_DAYS ? "badge warn" : "badge", title: robot.expires_at }, text);
}

function grantsText(grants) {
  if (!grants || grants.length === 0) return "none";
  return grants.map((g) => g.repository + " (" + g.actions.join(", ") + ")").join("; ");
}

// "PATTERN ACTIONS" per line (actions comma- or space-separated) → grants.
export function parseGrantLines(text) {
  const grants = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const [repository, ...rest] = line.split(/\s+/);
    const actions = rest.join(",").split(",").map((a) => a.trim()).filter(Boolean);
    if (actions.length === 0) throw new Error("line \"" + line + "\": name the actions after the pattern, e.g. team/app pull,push");
    grants.push({ repository, actions });
  }
  return grants;
}

function loginCommand(name, secret, registry) {
  // The secret's characters ([A-Za-z0-9_-]) need no quoting beyond single quotes.
  return "echo '" + secret + "' | docker login -u " + name + " --password-stdin " + registry;
}

function secretPanel(answer, what) {
  const cmd = loginCommand(answer.name, answer.secret, answer.registry);
  return h(
    "section",
    { class: "note", id: "robot-secret", "aria-labelledby": "robot-secret-title" },
    h("h2", { id: "robot-secret-title" }, "Secret for " + answer.name + " (" + what + ")"),
    h("p", {}, h("strong", {}, "Shown once: "), "copy it into your CI system's secret store now. It cannot be shown again; rotate to get a new one."),
    h("div", { class: "cmd" }, h("code", { id: "robot-secret-value" }, answer.secret), copyButton(answer.secret, "Copy the secret")),
    h("div", { class: "cmd" }, h("code", { id: "robot-login-command" }, cmd), copyButton(cmd, "Copy the docker login command")),
  );
}

// The banner of robots that expire within 14 days (or have expired), above the page; hidden
// when there are none, or when the API has no robots (htpasswd mode).
export async function refreshRobotBanner() {
  let banner = document.getElementById("robot-banner");
  if (!banner) {
    banner = h("div", { id: "robot-banner", class: "banner", role: "status", hidden: true });
    document.getElementById("banner").after(banner);
  }
  if (!session.token) {
    banner.hidden = true;
    return;
  }
  try {
    const data = await api("GET", "/robots?expiring_within=" + EXPIRING_DAYS);
    if (!available && session.token) {
      available = true;
      onAvailable();
    }
    const robots = data.robots || [];
    if (robots.length === 0) {
      banner.hidden = true;
      return;
    }
    const now = Date.now();
    const expired = robots.filter((r) => Date.parse(r.expires_at) <= now).length;
    clear(banner);
    add(
      banner,
      robots.length === 1 ? "1 robot account expires" : robots.length + " robot accounts expire",
      " within " + EXPIRING_DAYS + " days",
      expired ? " or has expired (" + expired + " expired)" : "",
      ": " + robots.map((r) => r.name).join(", ") + ". ",
      h("a", { href: "#/robots" }, "Rotate or extend them"),
      ".",
    );
    banner.hidden = false;
  } catch (_) {
    banner.hidden = true;
  }
}

// The secret lives only in the panel's text: it is never stored, and leaving the page drops it.
export async function pageRobots(m) {
  add(m, pageHeader("Robot accounts"));
  add(
    m,
    h(
      "p",
      { class: "muted" },
      "Credentials for CI pipelines: named robot.OWNER.NAME, limited to their grants and to what their owner may do, expiring, revocable. Log in with the name and the secret as the password.",
    ),
  );
  let data;
  try {
    data = await api("GET", "/robots");
  } catch (err) {
    if (err.code === "token_mode_required") {
      add(m, note("Robot accounts need token mode (AUTH_MODE=token): in htpasswd mode the registry checks passwords itself and could not hold a robot to its grants."));
      return;
    }
    throw err;
  }
  const secretBox = h("div", { id: "robot-secret-box" });
  const listBox = h("div", { id: "robot-list" });
  const editBox = h("div", { id: "robot-edit" });
  add(m, secretBox);

  const showSecret = (answer, what) => {
    add(clear(secretBox), secretPanel(answer, what));
    secretBox.querySelector("h2").focus?.();
  };

  const reload = async () => {
    data = await api("GET", "/robots");
    renderList();
    refreshRobotBanner();
  };

  const renderList = () => {
    const now = Date.now();
    const robots = data.robots || [];
    const rows = robots.map((r) => {
      const rotate = h("button", { type: "button", class: "small", "aria-label": "Rotate the secret of " + r.name }, "Rotate");
      const del = h("button", { type: "button", class: "small danger", "aria-label": "Delete " + r.name }, "Delete");
      const edit = h("button", { type: "button", class: "small", "aria-label": "Edit the grants of " + r.name }, "Grants");
      rotate.addEventListener("click", async () => {
        const overlap = h("input", { id: "robot-overlap", type: "number", min: "0", max: "86400", value: "0" });
        const ok = await confirmDialog(
          "Rotate the secret of " + r.name + "?",
          [
            h("p", {}, "A new secret is made and shown once."),
            h("p", {}, h("label", { for: "robot-overlap" }, "Seconds the old secret keeps working (0–86400)", overlap)),
          ],
          "Rotate",
        );
        if (!ok) return;
        try {
          const answer = await api("POST", "/robots/" + encodeURIComponent(r.name) + "/rotate", { overlap_seconds: Number(overlap.value || 0) });
          showSecret(answer, "rotated");
          await reload();
        } catch (err) {
          toast(messageOf(err));
        }
      });
      del.addEventListener("click", async () => {
        const ok = await confirmDialog("Delete " + r.name + "?", [h("p", {}, "Pipelines using it are refused from now on.")], "Delete");
        if (!ok) return;
        try {
          await api("DELETE", "/robots/" + encodeURIComponent(r.name));
          toast("Deleted " + r.name + ".");
          clear(editBox);
          await reload();
        } catch (err) {
          toast(messageOf(err));
        }
      });
      edit.addEventListener("click", () => {
        add(
          clear(editBox),
          h("h2", {}, "Grants of " + r.name),
          grantsEditor("robot-grants", r.grants, async (grants) => {
            const saved = await api("PUT", "/robots/" + encodeURIComponent(r.name) + "/grants", { grants });
            await reload();
            return saved.grants;
          }),
        );
      });
      return h(
        "tr",
        { "data-robot": r.name },
        h("td", { class: "mono" }, r.name),
        h("td", {}, r.owner),
        h("td", {}, r.description || ""),
        h("td", { class: "mono" }, grantsText(r.grants)),
        h("td", {}, expiryBadge(r, now)),
        h("td", {}, r.last_used_at ? formatTime(r.last_used_at) : "never"),
        h("td", {}, h("div", { class: "row" }, edit, rotate, del)),
      );
    });
    add(
      clear(listBox),
      rows.length
        ? table(["Name", "Owner", "Description", "Grants", "Expiry", "Last used", ""], rows, rows.length + (rows.length === 1 ? " robot" : " robots"))
        : note("No robot accounts yet."),
    );
  };

  // Create.
  const name = h("input", { id: "robot-name", required: true, pattern: "[a-z0-9][a-z0-9\\-]{0,31}", autocomplete: "off", placeholder: "ci" });
  const owner = h("input", { id: "robot-owner", autocomplete: "off", placeholder: session.user });
  const description = h("input", { id: "robot-description", maxlength: "200", autocomplete: "off" });
  const days = h("input", { id: "robot-days", type: "number", min: "1", max: "3650", value: "90" });
  const never = h("input", { id: "robot-never", type: "checkbox" });
  const grants = h("textarea", { id: "robot-grants-text", rows: "3", placeholder: "team/app pull,push" });
  const status = h("p", { "aria-live": "polite", id: "robot-create-status" });
  const create = h("button", { type: "submit", class: "primary" }, "Create robot");
  const form = h(
    "form",
    { id: "robot-create" },
    h(
      "fieldset",
      {},
      h("legend", {}, "New robot"),
      h(
        "div",
        { class: "row" },
        h("label", { for: "robot-name" }, "Name (a-z, 0-9, -)", name),
        session.isAdmin ? h("label", { for: "robot-owner" }, "Owner (default: you)", owner) : null,
        h("label", { for: "robot-description" }, "Description", description),
        h("label", { for: "robot-days" }, "Expires in days", days),
        session.isAdmin ? h("label", { class: "check", for: "robot-never" }, never, "Never expires") : null,
      ),
      h("p", {}, h("label", { for: "robot-grants-text" }, "Grants, one per line: pattern and actions (pull, push, delete)", grants)),
      h("div", { class: "row" }, create),
      status,
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.className = "muted";
    status.textContent = "Creating…";
    create.disabled = true;
    try {
      const body = { name: name.value.trim(), description: description.value, grants: parseGrantLines(grants.value) };
      if (session.isAdmin && owner.value.trim()) body.owner = owner.value.trim();
      body.expires_in_days = session.isAdmin && never.checked ? null : Number(days.value || 90);
      const answer = await api("POST", "/robots", body);
      status.className = "ok";
      status.textContent = "Created " + answer.name + ".";
      form.reset();
      showSecret(answer, "new");
      await reload();
    } catch (err) {
      status.className = "error";
      status.textContent = messageOf(err);
    } finally {
      create.disabled = false;
    }
  });

  add(m, listBox, editBox, form);
  renderList();
}
