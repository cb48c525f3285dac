// The API as the pages use it: the session (the bearer token, kept for this tab only), the one
// fetch helper, the login request and the API's error shape. It imports nothing, so every other
// module may import it.
//
// Every request but the login carries the bearer token, and every request is made with
// `credentials: "omit"`, so a 401 (which carries `WWW-Authenticate: Basic`) never makes the
// browser show its own login dialog: per the Fetch standard the browser only prompts when the
// request may include credentials.

const TOKEN_KEY = "registry-admin.token";
const USER_KEY = "registry-admin.user";
const ROLE_KEY = "registry-admin.role";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const session = {
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

// What to do when the API answers 401 (the token expired or was revoked): the shell (main.js)
// signs out. A hook, so this module needs nothing from above it.
let sessionEnded = () => {};
export function onSessionEnd(handler) {
  sessionEnded = handler;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json", Authorization: "Bearer " + session.token };
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) {
    const err = await readError(resp);
    sessionEnded("Your session has ended (" + err.message + "). Sign in again.");
    throw err;
  }
  if (!resp.ok) throw await readError(resp);
  if (resp.status === 204) return null;
  const type = resp.headers.get("content-type") || "";
  return type.includes("json") ? resp.json() : resp.text();
}

// A 404 from the server's fallback route means this build has no such endpoint.
export function missingEndpoint(err) {
  return err instanceof ApiError && err.status === 404 && /no such endpoint/i.test(err.message);
}

export function enc(name) {
  // Repository names keep their `/` (the API routes them as several segments).
  return name.split("/").map(encodeURIComponent).join("/");
}

export function messageOf(err) {
  if (err instanceof ApiError) return err.message;
  return "Request failed: " + (err && err.message ? err.message : String(err));
}

// Asks for a token with the password; the role decides which pages show (the API enforces it
// either way).
export async function signIn(username, password) {
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
