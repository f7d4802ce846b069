// Imports in the admin: the upload page shows only the chosen kind's options and fields, and the chosen file's
// columns to map them; an import's page polls its progress (a small JSON view) every 1.5 seconds until the import is finished,
// then reloads once.
"use strict";
(function () {
  function showKindOptions() {
    const kind = document.getElementById("id_kind");
    if (!kind) return;
    const update = function () {
      document.querySelectorAll("[data-import-kind]").forEach(function (fieldset) {
        fieldset.hidden = fieldset.dataset.importKind !== kind.value;
      });
      // Fields only some kinds take (tags: contacts), hidden and left out of the form for the others, so that
      // what was typed there neither shows nor gets refused, and is back when the kind is.
      document.querySelectorAll("[data-import-kinds]").forEach(function (row) {
        const applies = row.dataset.importKinds.split(" ").includes(kind.value);
        row.hidden = !applies;
        row.querySelectorAll("input, select, textarea, button").forEach(function (element) {
          element.disabled = !applies;
        });
      });
    };
    kind.addEventListener("change", update);
    update();
  }

  // The upload page's column table: the server reads the chosen file's first rows (the head of a csv or txt; a
  // workbook whole) as the import will, and says what each column becomes; each choice changed here is written
  // into the mapping field as JSON and checked again, so that the page shows the import's own words. A workbook is
  // sent once: the server keeps it under a token (the form's `staged` field), which later questions and the
  // upload give instead of the file.
  const HEAD_BYTES = 64 * 1024;

  function columnMapping() {
    const panel = document.getElementById("import-columns");
    const fileInput = document.getElementById("id_file");
    const kind = document.getElementById("id_kind");
    const mapping = document.getElementById("id_mapping");
    const staged = document.getElementById("id_staged");
    if (!panel || !fileInput || !kind || !mapping || !staged) return;
    const csrf = panel.closest("form").querySelector("[name=csrfmiddlewaretoken]").value;
    const rows = panel.querySelector("[data-columns=rows]");
    const error = panel.querySelector("[data-columns=error]");
    let asked = 0;
    let written = false;  // the mapping field holds what this table wrote (not what the user typed)
    // The file the server keeps under staged.value: null for one kept before the page came back with errors.
    let keptFile = null;
    const isKept = function (file) {
      return Boolean(staged.value) && (file === undefined || file === keptFile);
    };
    const workbook = function (file) {
      return /\.xlsx?$/i.test(file.name);
    };

    // A workbook or a small file whole; of a large text file, its first lines up to HEAD_BYTES (cut after a line
    // feed, so that no character is cut in two). In UTF-16 (a BOM) a line feed is two bytes at an even offset,
    // 0A 00 (little-endian) or 00 0A: a lone 0A byte may be half of another character (Gujarati, Gurmukhi: U+0Axx).
    const lineEnd = function (bytes) {
      const little = bytes[0] === 0xff && bytes[1] === 0xfe;
      if (!little && !(bytes[0] === 0xfe && bytes[1] === 0xff)) return bytes.lastIndexOf(0x0a) + 1;
      for (let at = bytes.length - 2 - (bytes.length % 2); at >= 2; at -= 2) {
        if (little ? bytes[at] === 0x0a && bytes[at + 1] === 0 : bytes[at] === 0 && bytes[at + 1] === 0x0a) {
          return at + 2;
        }
      }
      return 0;
    };
    const head = function (file) {
      if (/\.xlsx?$/i.test(file.name) || file.size <= 4 * HEAD_BYTES) return Promise.resolve(file);
      return file.slice(0, HEAD_BYTES).arrayBuffer().then(function (buffer) {
        const bytes = new Uint8Array(buffer);
        const end = lineEnd(bytes);
        return new File([bytes.slice(0, end > 1 ? end : bytes.length)], file.name);
      });
    };
    const option = function (value, text) {
      const element = document.createElement("option");
      element.value = value;
      element.textContent = text;
      return element;
    };
    const problem = function (errors, keepRows) {
      error.textContent = Object.values(errors).flat().join(" ");
      error.hidden = false;
      if (!keepRows) rows.replaceChildren();
      panel.hidden = false;
    };
    const write = function () {
      const chosen = {};
      rows.querySelectorAll("select").forEach(function (select) {
        chosen[select.dataset.column] = select.value;
      });
      mapping.value = JSON.stringify(chosen);
      written = true;
      ask(true);
    };
    const show = function (data) {
      error.hidden = true;
      rows.replaceChildren();
      data.columns.forEach(function (column) {
        const row = rows.insertRow();
        row.insertCell().textContent = column.name;
        const sample = row.insertCell();
        sample.className = "import-column-sample";
        sample.textContent = column.sample;
        const select = document.createElement("select");
        select.dataset.column = column.key;
        select.setAttribute("aria-label", "What column " + column.name + " becomes");
        data.fields.forEach(function (field) {
          select.append(option(field, field.replace(/_/g, " ")));
        });
        const attributes = [column.attribute, column.target.startsWith("attributes.") ? column.target : ""];
        new Set(attributes.filter(Boolean)).forEach(function (attribute) {
          const key = attribute.slice("attributes.".length);
          select.append(option(attribute, "attribute {{" + key + "}}"));
        });
        select.append(option("", "left out"));
        select.value = column.target;
        select.addEventListener("change", write);
        row.insertCell().append(select);
      });
      if (data.problem) problem({mapping: [data.problem]}, true);  // e.g. no phone column yet: choose one below
      panel.hidden = false;
    };
    const ask = function (withMapping) {
      const file = fileInput.files[0];
      if (!file && !isKept(file)) {
        panel.hidden = true;
        return;
      }
      const mine = ++asked;
      const token = isKept(file) ? staged.value : "";
      (token ? Promise.resolve(null) : head(file))
        .then(function (part) {
          const body = new FormData();
          if (token) body.append("staged", token);
          else body.append("file", part);
          if (!token && workbook(file)) body.append("keep", "1");  // sent whole: keep it for what follows
          body.append("kind", kind.value);
          if (withMapping) body.append("mapping", mapping.value);
          return fetch(panel.dataset.url, {
            method: "POST", body: body, credentials: "same-origin",
            headers: {"X-CSRFToken": csrf, Accept: "application/json"},
          });
        })
        .then(function (response) {
          if (!response.ok) throw new Error(response.statusText);
          return response.json();
        })
        .then(function (data) {
          if (data.staged && !token && fileInput.files[0] === file) {
            keptFile = file;
            staged.value = data.staged;
          }
          if (mine !== asked) return;  // a later question is on its way
          if (data.errors) problem(data.errors, !data.errors.file);
          else show(data);
        })
        .catch(function () {
          if (mine === asked) problem({file: ["The columns could not be read here; the upload checks them."]});
        });
    };
    const restart = function () {
      if (written) mapping.value = "";  // a new file or kind: the table's old choices do not apply
      if (staged.value && (fileInput.files[0] || null) !== keptFile) {
        staged.value = "";  // another file (or none): the kept one is no longer the form's
        keptFile = null;
      }
      written = false;
      ask(true);
    };
    fileInput.addEventListener("change", restart);
    kind.addEventListener("change", restart);
    mapping.addEventListener("change", function () {
      written = false;
      ask(true);
    });
    // The upload sends the kept workbook's token, not the workbook again (a disabled input is not sent).
    panel.closest("form").addEventListener("submit", function () {
      fileInput.disabled = fileInput.files.length > 0 && isKept(fileInput.files[0]);
    });
    window.addEventListener("pageshow", function () {
      fileInput.disabled = false;
    });
    if (fileInput.files.length || staged.value) ask(true);
  }

  function render(panel, data) {
    panel.querySelectorAll("[data-field]").forEach(function (element) {
      const name = element.dataset.field;
      let value = data[name];
      if (name === "percent") value = value === null ? "" : value + "%";
      else if (name === "rows_total" && value === null) value = "…";
      else if (typeof value === "number") value = value.toLocaleString("en-US");
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
    columnMapping();
    const panel = document.getElementById("import-progress");
    if (panel && panel.dataset.finished !== "true") follow(panel);
  });
})();
