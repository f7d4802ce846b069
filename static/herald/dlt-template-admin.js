// A DLT template's page: the senders' search box offers the senders of the account chosen above it (a template
// belongs to one account; a sender of another is refused on save), and follows the account when it changes. Django's
// autocomplete sends only the term and the field; this adds the account to each of the senders' searches (a jQuery
// prefilter, so that it holds whatever order the scripts start in). No account: every sender, as a template without
// an account (from an import made before the import asked for one) may be registered for senders of several.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Once the page is read: this script may come before the admin's jquery.init.js, which defines django.jQuery.
  const $ = window.django && window.django.jQuery;
  if (!$) return;
  $.ajaxPrefilter(function (options) {
    if (typeof options.data !== "string") return;
    const params = new URLSearchParams(options.data);
    if (params.get("model_name") !== "dlttemplate" || params.get("field_name") !== "senders") return;
    const account = document.getElementById("id_account");
    if (account && account.value) options.data += "&" + new URLSearchParams({account: account.value}).toString();
  });
});

// The preview under the body: the body as typed (saved or not) goes to the server with a value for each variable or
// a campaign's text, and comes back filled or matched, with its SMS parts and what DLT would refuse. The server parses
// the body and counts the parts (the estimate's own functions), so this script only shows what it says. The panel's
// inputs have no names: the form saves none of them.
document.addEventListener("DOMContentLoaded", function () {
  const panel = document.getElementById("dlt-preview");
  const body = document.getElementById("id_body");
  if (!panel) return;
  const valuesBox = panel.querySelector(".dlt-preview-values");
  const textBox = document.getElementById("dlt-preview-text");
  const result = panel.querySelector(".dlt-preview-result");
  const typed = {}; // the value typed for each variable, kept while the body changes around it
  let timer = null;
  // Until a value is typed, a variable without one is no problem yet: the page has just opened, or the body is being
  // written. The server's "No value yet for …" is then a quiet hint, and red once a value has been typed.
  let valuesTyped = false;
  // Likewise a body not yet typed on the add page: "The template body cannot be empty." is said once a body has been
  // typed (and emptied) or a campaign's text is checked against none, not as the page opens.
  let bodyTyped = false;
  let sent = 0;

  function bodyText() {
    if (body) return body.value;
    const shown = panel.closest("fieldset") && panel.closest("fieldset").querySelector(".field-body .readonly");
    return shown ? shown.textContent : ""; // a view-only page shows the body as text
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function showValues(variables, lengths, max, matched) {
    const wanted = variables.join("\u0000");
    if (valuesBox.dataset.variables !== wanted) {
      valuesBox.replaceChildren();
      variables.forEach(function (key) {
        const row = element("p");
        const input = element("input");
        input.type = "text";
        input.size = 34;
        input.id = "dlt-preview-value-" + key;
        input.dataset.variable = key;
        input.value = typed[key] || "";
        input.addEventListener("input", function () {
          typed[key] = input.value;
          valuesTyped = true;
          schedule();
        });
        const label = element("label", key + ": ");
        label.htmlFor = input.id;
        row.append(label, input, element("span", "", "dlt-preview-length"));
        valuesBox.append(row);
      });
      valuesBox.dataset.variables = wanted;
    }
    valuesBox.querySelectorAll("input").forEach(function (input) {
      const counter = input.parentNode.querySelector(".dlt-preview-length");
      const n = lengths[input.dataset.variable];
      // Checking a campaign's text: what the text gives each variable, shown in its box.
      input.placeholder = matched ? matched[input.dataset.variable] || "" : "";
      counter.textContent = n === undefined ? "" : " " + n + "/" + max;
      counter.classList.toggle("errornote-inline", n !== undefined && n > max);
    });
  }

  function show(preview) {
    const matched = preview.matches === null || preview.matches === undefined ? null : preview.values || {};
    showValues(preview.variables || [], preview.lengths || {}, preview.max_length || 30, matched);
    result.replaceChildren();
    if (preview.matches === true) result.append(element("p", "The text matches the template.", "dlt-preview-ok"));
    const said = (preview.problems || []).filter(function (problem) {
      return problem.field !== "body" || bodyTyped;
    });
    const hints = said.filter(function (problem) {
      return problem.field === "values" && !valuesTyped;
    });
    const problems = said.filter(function (problem) {
      return hints.indexOf(problem) === -1;
    });
    hints.forEach(function (hint) {
      result.append(element("p", hint.message, "dlt-preview-hint"));
    });
    if (problems.length) {
      const list = element("ul", undefined, "errorlist");
      problems.forEach(function (problem) {
        list.append(element("li", problem.message));
      });
      result.append(list);
    }
    if (preview.parts) {
      const parts = preview.parts;
      let said = parts.parts + " SMS part" + (parts.parts === 1 ? "" : "s") + ", " + parts.encoding + ", " +
        parts.length + " characters (" + parts.per_part + " a part)";
      if (parts.first_ucs2_char) said += "; UCS-2 because of " + JSON.stringify(parts.first_ucs2_char);
      result.append(element("pre", preview.text, "dlt-preview-text"), element("p", said, "dlt-preview-parts"));
    }
  }

  function refresh() {
    const data = new URLSearchParams({body: bodyText(), text: textBox.value});
    Object.keys(typed).forEach(function (key) {
      data.append("value:" + key, typed[key]);
    });
    const token = document.querySelector("input[name=csrfmiddlewaretoken]");
    const mine = ++sent;
    fetch(panel.dataset.url, {
      method: "POST",
      body: data,
      headers: {"X-CSRFToken": token ? token.value : ""},
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (preview) {
        if (preview && mine === sent) show(preview); // an older answer arriving late is not shown
      });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }

  function typing() {
    bodyTyped = true;
    schedule();
  }

  if (body) body.addEventListener("input", typing);
  textBox.addEventListener("input", typing);
  refresh();
});
