// Imports in the admin: the upload page shows only the chosen kind's options; an import's page polls its
// progress (a small JSON view) every 1.5 seconds until the import is finished, then reloads once.
"use strict";
(function () {
  function showKindOptions() {
    const kind = document.getElementById("id_kind");
    if (!kind) return;
    const update = function () {
      document.querySelectorAll("[data-import-kind]").forEach(function (fieldset) {
        fieldset.hidden = fieldset.dataset.importKind !== kind.value;
      });
    };
    kind.addEventListener("change", update);
    update();
  }

  function render(panel, data) {
    panel.querySelectorAll("[data-field]").forEach(function (element) {
      const name = element.dataset.field;
      let value = data[name];
      if (name === "percent") value = value === null ? "" : value + "%";
      else if (name === "rows_total" && value === null) value = "…";
      else if (typeof value === "number") value = value.toLocaleString();
      element.textContent = value;
      if (name === "error_message") element.hidden = !value;
    });
    const bar = panel.querySelector("progress");
    if (data.percent === null) bar.removeAttribute("value");
    else bar.value = data.percent;
    panel.querySelectorAll("[data-show=has_error_report]").forEach(function (element) {
      element.hidden = !data.has_error_report;
    });
    panel.querySelectorAll("[data-show=error_report_removed]").forEach(function (element) {
      element.hidden = !data.error_report_removed;
    });
    panel.querySelectorAll("[data-show=running]").forEach(function (element) {
      element.hidden = data.finished;
    });
  }

  function follow(panel) {
    const poll = function () {
      fetch(panel.dataset.progressUrl, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (!response.ok) throw new Error(response.statusText);
          return response.json();
        })
        .then(function (data) {
          render(panel, data);
          if (!data.finished) window.setTimeout(poll, 1500);
          else window.location.reload();  // once, so that the record below shows the final state too
        })
        .catch(function () {
          window.setTimeout(poll, 5000);
        });
    };
    window.setTimeout(poll, 1500);
  }

  document.addEventListener("DOMContentLoaded", function () {
    showKindOptions();
    const panel = document.getElementById("import-progress");
    if (panel && panel.dataset.finished !== "true") follow(panel);
  });
})();
