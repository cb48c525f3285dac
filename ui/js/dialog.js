// The one modal <dialog> of index.html, as a confirmation or a small form.

import { $, append, clear, h } from "./dom.js";

// A confirmation in a modal <dialog>: focus is trapped, Escape cancels.
export function confirmDialog(title, bodyNodes, okLabel) {
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
export function formDialog(title, fields, okLabel) {
  const inputs = fields.map((f) =>
    h("input", { id: "dlg-" + f.name, name: f.name, type: f.type || "text", autocomplete: f.autocomplete || "off", required: true }),
  );
  const body = fields.map((f, i) => h("p", {}, h("label", { for: "dlg-" + f.name }, f.label, inputs[i])));
  return confirmDialog(title, body, okLabel).then((ok) =>
    ok ? Object.fromEntries(fields.map((f, i) => [f.name, inputs[i].value])) : null,
  );
}
