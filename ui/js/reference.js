// The API page: where the Swagger UI reference is (ui/api.html) and one's bearer token for it.

import { session } from "./api.js";
import { add, copyButton, h } from "./dom.js";
import { pageHeader } from "./page.js";

export async function pageApi(m) {
  add(m, 
    pageHeader("API reference"),
    h("p", {}, "The OpenAPI 3 document of this server, rendered by the bundled Swagger UI (works offline)."),
    h("p", {}, h("a", { href: "/ui/api.html", id: "api-link" }, "Open the API reference"), " · ", h("a", { href: "/openapi.json" }, "Download openapi.json")),
    h("p", {}, "Your bearer token for the reference's Authorize button:"),
    h("div", { class: "cmd" }, h("code", { id: "my-token" }, session.token.slice(0, 16) + "…"), copyButton(session.token, "Copy my bearer token")),
  );
}
