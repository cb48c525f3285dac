// registry-admin web UI. Plain ES module, no build step.
//
// Safety rules kept throughout: everything that comes from the API (names, tags, usernames, audit
// fields, messages) reaches the page through textContent / createElement, never innerHTML; every
// request but the login carries the bearer token, and every request is made with
// `credentials: "omit"`, so a 401 (which carries `WWW-Authenticate: Basic`) never makes the
// browser show its own login dialog: per the Fetch standard the browser only prompts when the
// request may include credentials.

import { pageRobots, refreshRobotBanner, robotsAvailable } from "./robots.js";
import { pageRetention } from "./retention.js";

const TOKEN_KEY = "registry-admin.token";
const USER_KEY = "registry-admin.user";
const ROLE_KEY = "registry-admin.role";
const DETAIL_CONCURRENCY = 6;

const $ = (sel) => document.querySelector(sel);
const main = () => $("#main");

// ---------- DOM helpers (text only) ----------

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  append(e, children);
  return e;
}

function append(parent, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return parent;
}

// Element.append would print `null` and stringify arrays; this skips the one, flattens the other.
function add(parent, ...children) {
  return append(parent, children);
}

function clear(e) {
  e.replaceChildren();
  return e;
}

function table(headers, rows, caption) {
  // Focusable so keyboard users can scroll a wide table sideways on a narrow screen.
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption || headers.join(", ") },
    h(
      "table",
      {},
      caption ? h("caption", { class: "muted" }, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
  );
}

function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, messageOf(err));
}

function loading(text) {
  return h("p", { class: "muted", "aria-busy": "true" }, text || "Loading…");
}

function note(text) {
  return h("p", { class: "note" }, text);
}

function messageOf(err) {
  if (err instanceof ApiError) return err.message;
  return "Request failed: " + (err && err.message ? err.message : String(err));
}

let toastTimer = null;
function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.textContent = ""), 4000);
}

function formatSize(n) {
  if (typeof n !== "number") return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? String(v) : v.toFixed(1)) + " " + units[i];
}

function shortDigest(d) {
  if (typeof d !== "string") return "–";
  const [alg, hex] = d.split(":");
  return hex ? alg + ":" + hex.slice(0, 12) : d;
}

function formatTime(t) {
  if (!t) return "–";
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function byteOrder(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------- session and API ----------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  get user() {
    return sessionStorage.getItem(USER_KEY);
  },
  get isAdmin() {
    return sessionStorage.getItem(ROLE_KEY) === "admin";
  },
  set(token, user, role) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(USER_KEY, user);
    sessionStorage.setItem(ROLE_KEY, role);
  },
  forget() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(USER_KEY);
    sessionStorage.removeItem(ROLE_KEY);
  },
};

async function readError(resp) {
  let code = "http_" + resp.status;
  let message = resp.status + " " + resp.statusText;
  try {
    const body = await resp.json();
    if (body && typeof body.message === "string") message = body.message;
    if (body && typeof body.error === "string") code = body.error;
  } catch (_) {
    // Not JSON: keep the status line.
  }
  return new ApiError(resp.status, code, message);
}

async function api(method, path, body) {
  const headers = { Accept: "application/json", Authorization: "Bearer " + session.token };
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) {
    const err = await readError(resp);
    signOut("Your session has ended (" + err.message + "). Sign in again.");
    throw err;
  }
  if (!resp.ok) throw await readError(resp);
  if (resp.status === 204) return null;
  const type = resp.headers.get("content-type") || "";
  return type.includes("json") ? resp.json() : resp.text();
}

// A 404 from the server's fallback route means this build has no such endpoint.
function missingEndpoint(err) {
  return err instanceof ApiError && err.status === 404 && /no such endpoint/i.test(err.message);
}

function enc(name) {
  // Repository names keep their `/` (the API routes them as several segments).
  return name.split("/").map(encodeURIComponent).join("/");
}

async function copyText(text, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch (_) {
    ok = false;
  }
  if (button) button.dataset.copied = ok ? "yes" : "no";
  toast(ok ? "Copied to the clipboard." : "Could not copy: select the text and copy it by hand.");
}

function copyButton(text, label) {
  const b = h("button", { type: "button", class: "small", "aria-label": label || "Copy " + text }, "Copy");
  b.addEventListener("click", () => copyText(text, b));
  return b;
}

// A confirmation in a modal <dialog>: focus is trapped, Escape cancels.
function confirmDialog(title, bodyNodes, okLabel) {
  const dialog = $("#dialog");
  $("#dialog-title").textContent = title;
  append(clear($("#dialog-body")), bodyNodes);
  $("#dialog-ok").textContent = okLabel || "OK";
  $("#dialog-form").reset?.();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        resolve(dialog.returnValue === "ok");
      },
      { once: true },
    );
    dialog.returnValue = "cancel";
    dialog.showModal();
    $("#dialog-cancel").focus();
  });
}

// A dialog with inputs; resolves to the form values or null.
function formDialog(title, fields, okLabel) {
  const inputs = fields.map((f) =>
    h("input", { id: "dlg-" + f.name, name: f.name, type: f.type || "text", autocomplete: f.autocomplete || "off", required: true }),
  );
  const body = fields.map((f, i) => h("p", {}, h("label", { for: "dlg-" + f.name }, f.label, inputs[i])));
  return confirmDialog(title, body, okLabel).then((ok) =>
    ok ? Object.fromEntries(fields.map((f, i) => [f.name, inputs[i].value])) : null,
  );
}

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

// ---------- shell: nav, banner, routing ----------

const PAGES = [
  { path: "repos", label: "Repositories", all: true },
  { path: "users", label: "Users", admin: true },
  { path: "access", label: "Access", admin: true },
  { path: "account", label: "My account", all: true },
  { path: "robots", label: "Robots", all: true, shown: robotsAvailable },
  { path: "audit", label: "Audit", admin: true },
  { path: "gc", label: "Garbage collection", admin: true },
  { path: "retention", label: "Retention", admin: true },
  { path: "api", label: "API", all: true },
];

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  return { path: path || "repos", params: new URLSearchParams(query || "") };
}

function link(path, params, text) {
  const q = params ? "?" + new URLSearchParams(params).toString() : "";
  return h("a", { href: "#/" + path + q }, text);
}

function renderShell(current) {
  const nav = $("#nav");
  clear(nav);
  for (const p of PAGES) {
    if (p.admin && !session.isAdmin) continue;
    if (p.shown && !p.shown()) continue;
    const section = { repo: "repos", image: "repos", user: "users" }[current] || current;
    add(nav, h("a", { href: "#/" + p.path, "aria-current": section === p.path ? "page" : null }, p.label));
  }
  nav.hidden = false;
  $("#who").hidden = false;
  $("#who-name").textContent = session.user + (session.isAdmin ? " (admin)" : "");
}

let bannerTimer = null;
async function refreshBanner() {
  const banner = $("#banner");
  if (!session.token || !session.isAdmin) {
    banner.hidden = true;
    return;
  }
  try {
    const data = await api("GET", "/gc");
    const active = (data.jobs || []).find((j) => j.state === "freezing" || j.state === "collecting");
    if (active) {
      banner.textContent =
        "Writes are frozen: garbage collection job " + active.id + " is " + active.state + ". Tag deletes wait until it ends.";
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  } catch (_) {
    banner.hidden = true;
  }
}

function startBanner() {
  clearInterval(bannerTimer);
  refreshBanner();
  refreshRobotBanner(robotUi);
  bannerTimer = setInterval(refreshBanner, 5000);
}

let pageTimer = null;

function pageHeader(title) {
  const h1 = h("h1", { tabindex: "-1" }, title);
  return h1;
}

let routeGeneration = 0;

async function route() {
  clearTimeout(pageTimer);
  pageTimer = null;
  const gen = ++routeGeneration;
  const m = main();
  if (!session.token) {
    renderLogin();
    return;
  }
  const { path, params } = parseHash();
  renderShell(path);
  const page = ROUTES[path];
  const meta = PAGES.find((p) => p.path === path);
  // Each visit renders into its own view, so a slow page that finishes after the user moved on
  // fills a detached node instead of the current page.
  const view = h("div", { class: "view" });
  add(clear(m), view);
  delete m.dataset.ready;
  if (!page || (meta && meta.admin && !session.isAdmin)) {
    add(view, pageHeader("Not found"), note("There is no such page for this account."));
    m.dataset.ready = location.hash;
    return;
  }
  m.setAttribute("aria-busy", "true");
  try {
    await page(view, params);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    add(view, errorBox(err));
  } finally {
    if (gen === routeGeneration) m.removeAttribute("aria-busy");
  }
  if (gen !== routeGeneration) return;
  // Tests and scripts can wait for this: the page for this address has finished loading.
  m.dataset.ready = location.hash || "#/repos";
  const h1 = m.querySelector("h1");
  if (h1 && document.activeElement === document.body) h1.focus();
  document.title = (h1 ? h1.textContent + " · " : "") + "registry-admin";
}

// ---------- login ----------

let loginMessage = "";

function signOut(message) {
  session.forget();
  loginMessage = message || "";
  clearInterval(bannerTimer);
  $("#banner").hidden = true;
  refreshRobotBanner(robotUi);
  if (location.hash !== "" && location.hash !== "#/repos") location.hash = "#/repos";
  renderLogin();
}

function renderLogin() {
  $("#nav").hidden = true;
  $("#who").hidden = true;
  document.title = "Sign in · registry-admin";
  const status = h("p", { id: "login-status", role: "alert", class: loginMessage ? "error" : "" }, loginMessage);
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
      loginMessage = "";
      pass.value = "";
      startBanner();
      await route();
    } catch (err) {
      status.className = "error";
      status.textContent = messageOf(err);
      submit.disabled = false;
    }
  });
  const box = h("div", { class: "login" }, h("h1", { id: "login-title" }, "Sign in"), form);
  add(clear(main()), box);
  user.focus();
}

async function signIn(username, password) {
  const bytes = new TextEncoder().encode(username + ":" + password);
  const basic = btoa(String.fromCharCode(...bytes));
  const resp = await fetch("/auth/token", {
    method: "POST",
    headers: { Authorization: "Basic " + basic, Accept: "application/json" },
    credentials: "omit",
    cache: "no-store",
  });
  if (!resp.ok) throw await readError(resp);
  const body = await resp.json();
  session.set(body.token, username, "user");
  // The role decides which pages show; the API enforces it either way.
  try {
    await api("GET", "/users/" + encodeURIComponent(username));
    session.set(body.token, username, "admin");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
  }
}

// ---------- repositories ----------

async function pageRepos(m) {
  add(m, pageHeader("Repositories"));
  const status = loading("Loading repositories…");
  add(m, status);
  performance.mark("ui:repos-request");
  const data = await api("GET", "/images");
  performance.mark("ui:repos-response");
  const repos = (data.repositories || []).slice().sort(byteOrder);
  // Repositories whose every tag is gone: registry:2 keeps listing them until a GC prunes them.
  const empty = new Set(data.empty || []);
  status.remove();
  const filter = h("input", { id: "repo-filter", type: "search", autocomplete: "off", placeholder: "team/app" });
  const count = h("p", { id: "repo-count", "aria-live": "polite" });
  add(m, h("div", { class: "row" }, h("label", { for: "repo-filter" }, "Filter repositories", filter)), count);
  if (repos.length === 0) {
    add(m, note(session.isAdmin ? "The registry holds no repositories yet." : "No repository is visible to this account."));
    count.textContent = "0 repositories";
    return;
  }
  const groups = new Map();
  for (const r of repos) {
    const slash = r.lastIndexOf("/");
    const ns = slash < 0 ? "" : r.slice(0, slash);
    if (!groups.has(ns)) groups.set(ns, []);
    groups.get(ns).push(r);
  }
  const container = h("div", { class: "groups" });
  const items = [];
  const sections = [];
  for (const [ns, names] of groups) {
    const ul = h("ul", {});
    const section = h("section", { "aria-label": ns ? "Namespace " + ns : "Top level" }, h("h2", {}, ns ? ns + "/" : "(top level)"), ul);
    const mine = [];
    for (const name of names) {
      const li = h("li", {}, link("repo", { name }, name), empty.has(name) ? h("span", { class: "badge" }, "empty") : null);
      li.dataset.name = name;
      mine.push(li);
      items.push(li);
      add(ul, li);
    }
    sections.push({ section, mine });
    add(container, section);
  }
  add(m, container);
  const apply = () => {
    const q = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const { section, mine } of sections) {
      let any = false;
      for (const li of mine) {
        const hit = !q || li.dataset.name.includes(q);
        li.hidden = !hit;
        if (hit) {
          any = true;
          shown++;
        }
      }
      section.hidden = !any;
    }
    count.textContent = q ? shown + " of " + repos.length + " repositories" : repos.length + " repositories";
  };
  filter.addEventListener("input", apply);
  apply();
  performance.mark("ui:repos-rendered");
}

// ---------- tags ----------

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

async function pageRepo(m, params) {
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

async function pageImage(m, params) {
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

// ---------- users ----------

const ROLES = ["user", "admin"];

async function pageUsers(m) {
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

// ---------- grants editor (users and everyone) ----------

const ACTIONS = ["pull", "push", "delete"];

function grantsEditor(idPrefix, initial, onSave) {
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

async function pageUser(m, params) {
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

// ---------- access ----------

function explainForm(fixedUser) {
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

async function pageAccess(m) {
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

// ---------- my account ----------

async function pageAccount(m) {
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

// ---------- audit ----------

const AUDIT_COLUMNS = ["Time", "Action", "Actor", "Outcome", "Source", "User", "Image", "Tag", "Digest", "Status", "Detail"];

async function pageAudit(m, params) {
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

// ---------- garbage collection ----------

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

async function pageGc(m) {
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
    if (location.hash.startsWith("#/gc")) pageTimer = setTimeout(() => watch(id).catch((err) => add(status, errorBox(err))), 1000);
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

// ---------- API reference ----------

async function pageApi(m) {
  add(m, 
    pageHeader("API reference"),
    h("p", {}, "The OpenAPI 3 document of this server, rendered by the bundled Swagger UI (works offline)."),
    h("p", {}, h("a", { href: "/ui/api.html", id: "api-link" }, "Open the API reference"), " · ", h("a", { href: "/openapi.json" }, "Download openapi.json")),
    h("p", {}, "Your bearer token for the reference's Authorize button:"),
    h("div", { class: "cmd" }, h("code", { id: "my-token" }, session.token.slice(0, 16) + "…"), copyButton(session.token, "Copy my bearer token")),
  );
}

// What ui/robots.js borrows from this file.
const robotUi = {
  h, add, clear, api, table, note, toast, copyButton, confirmDialog, formatTime, pageHeader, session, messageOf, grantsEditor,
  refreshNav: () => renderShell(parseHash().path),
};

const ROUTES = {
  repos: pageRepos,
  repo: pageRepo,
  image: pageImage,
  users: pageUsers,
  user: pageUser,
  access: pageAccess,
  account: pageAccount,
  audit: pageAudit,
  gc: pageGc,
  retention: (m) =>
    pageRetention(m, { h, add, api, table, note, pageHeader, messageOf, confirmDialog, toast, shortDigest, formatTime }),
  api: pageApi,
  robots: (m, params) => pageRobots(m, params, robotUi),
};

// ---------- start ----------

$("#logout").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", () => route());
if (session.token) startBanner();
route();
