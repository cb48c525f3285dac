// The users page, one user's page, and what a user (not an admin) sees.
import { apiCall, assertEq, endpointExists, go, login, newPage, shot, test } from "../harness.mjs";

test("an admin adds a user, changes its role and gives it a grant", async () => {
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/users");
  await page.getByLabel("Username").fill("carol");
  await page.getByLabel("Password (8–72 bytes)").fill("carol-password-1");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.locator("tr[data-user='carol']").waitFor();
  assertEq((await apiCall("GET", "/users/carol")).json.role, "user", "created as user");
  // A refused value shows the API's message.
  await page.getByLabel("Username").fill("-bad");
  await page.getByLabel("Password (8–72 bytes)").fill("whatever-123");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.locator("p.error").waitFor();
  await page.getByRole("button", { name: "Disable carol" }).click();
  // The confirmation says what ends at once; this stack is in htpasswd mode (no registry tokens).
  const revocation = await page.locator("#dialog[open] #dialog-revocation").textContent();
  assertEq(/stop working at once/.test(revocation) && /at once there too/.test(revocation), true, "disable bound shown: " + revocation);
  await page.locator("#dialog-ok").click();
  await page.locator("tr[data-user='carol'] td", { hasText: "disabled" }).waitFor();
  assertEq((await apiCall("GET", "/users/carol")).json.disabled, true, "disabled");
  await page.getByRole("button", { name: "Enable carol" }).click();
  await page.locator("tr[data-user='carol'] td", { hasText: "enabled" }).waitFor();
  await page.getByLabel("Role of carol").selectOption("admin");
  await page.locator("tr[data-user='carol'] button", { hasText: "Set role" }).click();
  await page.locator("tr[data-user='carol'] td:nth-child(2)", { hasText: "admin" }).waitFor();
  assertEq((await apiCall("GET", "/users/carol")).json.role, "admin", "promoted");
  await page.getByLabel("Role of carol").selectOption("user");
  await page.locator("tr[data-user='carol'] button", { hasText: "Set role" }).click();
  await page.locator("tr[data-user='carol'] td:nth-child(2)", { hasText: "user" }).waitFor();
  assertEq((await apiCall("GET", "/users/carol")).json.role, "user", "back to user");
  await shot(page, "users");
  await go(page, "#/user?name=carol");
  if (await endpointExists("/users/carol/grants")) {
    await page.getByLabel("Repository pattern").fill("team/**");
    await page.getByRole("button", { name: "Add grant" }).click();
    await page.locator("#user-grants-save").click();
    await page.getByText("Saved.").waitFor();
    assertEq((await apiCall("GET", "/users/carol/grants")).json.grants, [{ repository: "team/**", actions: ["pull"] }], "grant stored");
  } else {
    // TODO(lead): once the grants API is merged this branch is dead; drop it.
    await page.getByText("Grants are not available on this server").waitFor();
  }
  await shot(page, "user");
  await context.close();
});

test("a user sees only its own pages and no admin controls", async () => {
  const made = await apiCall("POST", "/users", { username: "dave", password: "dave-password-1", role: "user" });
  assertEq(made.status, 201, "dave created");
  const { context, page } = await newPage();
  await login(page, "dave", "dave-password-1");
  const nav = await page.locator("#nav a").allTextContents();
  assertEq(nav, ["Repositories", "My account", "API"], "user nav");
  await go(page, "#/users");
  assertEq(await page.locator("h1").textContent(), "Not found", "admin page hidden");
  await go(page, "#/account");
  await shot(page, "account");
  await context.close();
});
