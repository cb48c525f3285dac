// The API reference (Swagger UI).
import { assert, BASE, go, login, newPage, shot, test } from "../harness.mjs";

test("the API reference renders /openapi.json with the vendored Swagger UI", async () => {
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/api");
  await page.locator("#api-link").click();
  await page.locator(".swagger-ui .opblock").first().waitFor({ timeout: 30000 });
  assert((await page.locator(".swagger-ui .opblock").count()) > 15, "operations listed");
  await shot(page, "api-reference");
  await page.goto(BASE + "/docs");
  await page.locator(".swagger-ui .opblock").first().waitFor({ timeout: 30000 });
  await context.close();
});
