"use strict";
// Swagger UI (vendored in ui/vendor) renders the document the binary generates.
window.addEventListener("DOMContentLoaded", function () {
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger",
    deepLinking: true,
    // No calls to an outside validator: this page must work offline.
    validatorUrl: null,
    tryItOutEnabled: false,
  });
});
