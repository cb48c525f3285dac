// Signing in and out.
import { ADMIN, apiCall, assert, assertEq, BASE, login, newPage, shot, test } from "../harness.mjs";

test("signing in with a wrong password shows the API's message and never the browser's dialog", async () => {
  // A context with HTTP credentials: if any request ever got a Basic challenge with credentials
  // allowed, chromium would answer it with these, and the audit log would show this name.
  const { context, page } = await newPage({ httpCredentials: { username: "dialog-trap", password: "dialog-trap-password" } });
  const apiRequests = [];
  page.on("request", async (req) => {
    const u = new URL(req.url());
    if (!u.pathname.startsWith("/ui") && u.pathname !== "/") apiRequests.push({ path: u.pathname, auth: (await req.allHeaders())["authorization"] || "" });
  });
  await page.goto(BASE + "/ui/");
  await shot(page, "login");
  await page.getByLabel("Username").fill(ADMIN);
  await page.getByLabel("Password").fill("wrong-password-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#login-status.error").waitFor();
  const msg = await page.locator("#login-status").textContent();
  assert(msg.length > 5 && !/^401/.test(msg), "an API message, got " + msg);
  // A stale token: the first API call is a 401, and the UI goes back to the form with a note.
  await login(page);
  await page.evaluate(() => sessionStorage.setItem("registry-admin.token", "ra1.stale.token"));
  await page.reload();
  await page.locator("#login-status.error").waitFor();
  assert(/session has ended/i.test(await page.locator("#login-status").textContent()), "session-ended note");
  assertEq(page.dialogs, [], "no dialogs");
  const trapped = await apiCall("GET", "/audit?user=dialog-trap");
  assertEq(trapped.status, 200, "audit query");
  assertEq(trapped.json.entries.length, 0, "requests answered with the context's Basic credentials");
  const bad = apiRequests.filter((r) => (r.path === "/auth/token" ? !r.auth.startsWith("Basic ") : !r.auth.startsWith("Bearer ")));
  assertEq(bad, [], "every API request carries the bearer (the login carries Basic)");
  assert(apiRequests.length >= 3, "some API requests were seen");
  await context.close();
});

test("signing out forgets the token and returns to the form", async () => {
  const { context, page } = await newPage();
  await login(page);
  assert(await page.evaluate(() => sessionStorage.getItem("registry-admin.token")), "token kept for the tab");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.locator("#login-user").waitFor();
  assertEq(await page.evaluate(() => sessionStorage.getItem("registry-admin.token")), null, "token forgotten");
  await context.close();
});
