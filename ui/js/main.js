// registry-admin web UI: the shell. Plain ES modules, no build step; this is the entry point
// (index.html loads it). It owns the nav, the banners' timer, sign-in and sign-out, and the
// router that maps `#/PAGE?params` to a page module. Page modules import the shared helpers
// (api.js, dom.js, dialog.js, format.js, page.js, grants.js), never this file.

import { ApiError, onSessionEnd, session } from "./api.js";
import { refreshBanner } from "./banner.js";
import { $, add, clear, errorBox, h, note } from "./dom.js";
import { renderLogin } from "./login.js";
import { clearPageTimer, pageHeader } from "./page.js";
import { pageAccess } from "./access.js";
import { pageAccount } from "./account.js";
import { pageAudit } from "./audit.js";
import { pageGc } from "./gc.js";
import { pageImage, pageRepo } from "./images.js";
import { pageApi } from "./reference.js";
import { pageRepos } from "./repos.js";
import { pageRetention } from "./retention.js";
import { onRobotsAvailable, pageRobots, refreshRobotBanner, robotsAvailable } from "./robots.js";
import { pageUser, pageUsers } from "./users.js";

const main = () => $("#main");

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

function startBanner() {
  clearInterval(bannerTimer);
  refreshBanner();
  refreshRobotBanner();
  bannerTimer = setInterval(refreshBanner, 5000);
}

let routeGeneration = 0;

async function route() {
  clearPageTimer();
  const gen = ++routeGeneration;
  const m = main();
  if (!session.token) {
    showLogin();
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

// ---------- sign-in and sign-out ----------

let loginMessage = "";

function showLogin() {
  renderLogin(loginMessage, async () => {
    loginMessage = "";
    startBanner();
    await route();
  });
}

function signOut(message) {
  session.forget();
  loginMessage = message || "";
  clearInterval(bannerTimer);
  $("#banner").hidden = true;
  refreshRobotBanner();
  if (location.hash !== "" && location.hash !== "#/repos") location.hash = "#/repos";
  showLogin();
}

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
  retention: pageRetention,
  api: pageApi,
  robots: pageRobots,
};

// ---------- start ----------

onSessionEnd(signOut);
// The robots page shows in the nav once the API is known to have robots (token mode).
onRobotsAvailable(() => renderShell(parseHash().path));
$("#logout").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", () => route());
if (session.token) startBanner();
route();
