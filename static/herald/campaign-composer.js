// The campaign composer (templates/admin/campaigns/campaign/change_form.html):
// - channel → account → sender → DLT template: the sender and template lists follow the choices above them;
// - a DLT template is filled slot by slot (each variable at most 30 characters) and composes the text;
// - variables (contact fields and attributes) are inserted by click where the cursor is;
// - the estimate panel refreshes 400 ms after the last change, from the form as it is, saved or not, with one
//   request on its way at a time (a change meanwhile is sent when it answers).
"use strict";
(function () {
  const PLACEHOLDER = /\{#\s*(\w+)\s*#\}|\{\{\s*(\w+)\s*\}\}/g;
  const MAX_VARIABLE = 30;

  function byId(id) { return document.getElementById(id); }

  function escapeRegExp(text) { return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"); }

  function labelOf(field) {
    if (!field) return "Campaign";
    const label = document.querySelector('label[for="id_' + field + '"]');
    return label ? label.textContent.replace(/:\s*$/, "").trim() : field.replace(/_/g, " ");
  }

  function number(value) { return typeof value === "number" ? value.toLocaleString("en-US") : value; }
  // The cost, which the JSON carries as a string ("9272.50"): two places, grouped as the counts are ("9,272.50").
  function money(value) {
    return Number(value).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }

  document.addEventListener("DOMContentLoaded", function () {
    const configElement = byId("composer-config");
    const form = byId("campaign_form");
    if (!configElement || !form) return;
    const config = JSON.parse(configElement.textContent);
    const fields = {
      channel: byId("id_channel"), account: byId("id_account"), sender: byId("id_sender"),
      template: byId("id_template"), text: byId("id_text"),
    };
    const panel = byId("estimate-panel");
    let loading = 0;
    let templates = {};  // id → {body, variables, …} of the sender's templates
    let lastTarget = null;  // where a clicked variable goes: the text or a template slot

    // --- Dependent choices -----------------------------------------------------------------------------------

    function fillSelect(select, items, label, emptyLabel) {
      const current = select.value;
      select.innerHTML = "";
      select.add(new Option(emptyLabel, ""));
      items.forEach(function (item) { select.add(new Option(label(item), String(item.id))); });
      const keep = items.some(function (item) { return String(item.id) === current; });
      select.value = keep ? current : "";
      return select.value !== current;
    }

    function getJSON(url) {
      loading += 1;
      return fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (!response.ok) throw new Error(response.statusText);
          return response.json();
        })
        .finally(function () { loading -= 1; });
    }

    // Only the channels the chosen account has enabled can be chosen; a channel it lacks gives way to its first when
    // the account changes (on opening, a saved campaign's channel stays shown, and its field says what is wrong).
    function limitChannels(keepCurrent) {
      const channel = fields.channel;
      const account = fields.account ? fields.account.value : "";
      // No account, or one added since the page opened (the "+" beside the field): its channels are the server's
      // to check, so every channel is offered again rather than the previous account's left disabled.
      const enabled = account && (config.account_channels || {})[account];
      if (!channel || !enabled) {
        if (channel) Array.prototype.forEach.call(channel.options, function (option) { option.disabled = false; });
        return false;
      }
      Array.prototype.forEach.call(channel.options, function (option) {
        option.disabled = enabled.indexOf(option.value) === -1;
      });
      const current = channel.options[channel.selectedIndex];
      if (current && keepCurrent) current.disabled = false;
      if (current && !current.disabled) return false;
      const first = Array.prototype.find.call(channel.options, function (option) { return !option.disabled; });
      if (!first) return false;
      channel.value = first.value;
      return true;
    }

    function loadSenders() {
      if (!fields.sender) return Promise.resolve();
      limitChannels();
      const account = fields.account ? fields.account.value : "";
      if (!account) {
        fillSelect(fields.sender, [], null, "Choose an account first");
        return loadTemplates();
      }
      const url = config.senders_url + "?" + new URLSearchParams({account: account, channel: fields.channel.value});
      return getJSON(url).then(function (data) {
        const empty = data.results.length ? "Choose a sender" : "No approved sender on this account and channel";
        fillSelect(fields.sender, data.results, function (s) { return s.label; }, empty);
        return loadTemplates();
      });
    }

    function loadTemplates() {
      if (!fields.template) return Promise.resolve();
      const sender = fields.sender ? fields.sender.value : "";
      if (!sender) {
        templates = {};
        fillSelect(fields.template, [], null, "No template (free text)");
        showTemplate(false);
        return Promise.resolve();
      }
      return getJSON(config.templates_url + "?" + new URLSearchParams({sender: sender})).then(function (data) {
        templates = {};
        data.results.forEach(function (t) { templates[String(t.id)] = t; });
        const changed = fillSelect(fields.template, data.results, function (t) {
          return t.name + " (" + t.dlt_template_id + ")";
        }, data.results.length ? "No template (free text)" : "No DLT template registered for this sender");
        showTemplate(changed);
      });
    }

    // --- DLT template slots ------------------------------------------------------------------------------------

    const templateBox = byId("composer-template");
    const templateBody = templateBox.querySelector("[data-composer=template-body]");
    let parsed = null;

    function parse(body) {
      const fixed = [];
      const slots = [];
      let start = 0;
      let count = 0;
      body.replace(PLACEHOLDER, function (match, slot, named, offset) {
        fixed.push(body.slice(start, offset));
        start = offset + match.length;
        slots.push({key: named ? "named:" + named : "slot:" + count, label: named || slot});
        count += 1;
        return match;
      });
      fixed.push(body.slice(start));
      return {fixed: fixed, slots: slots};
    }

    function valuesFromText(text) {
      let pattern = "^" + escapeRegExp(parsed.fixed[0]);
      parsed.slots.forEach(function (slot, index) { pattern += "([\\s\\S]*?)" + escapeRegExp(parsed.fixed[index + 1]); });
      const match = new RegExp(pattern + "$").exec(text);
      const values = {};
      parsed.slots.forEach(function (slot, index) { values[slot.key] = match ? match[index + 1] : ""; });
      return values;
    }

    function compose() {
      const inputs = templateBody.querySelectorAll("input[data-key]");
      const values = {};
      inputs.forEach(function (input) { values[input.dataset.key] = input.value; });
      let text = parsed.fixed[0];
      parsed.slots.forEach(function (slot, index) { text += (values[slot.key] || "") + parsed.fixed[index + 1]; });
      fields.text.value = text;
    }

    function showTemplate(recompose) {
      const template = fields.template && templates[fields.template.value];
      templateBox.hidden = !template;
      fields.text.readOnly = !!template;
      if (!template) {
        parsed = null;
        return;
      }
      parsed = parse(template.body);
      const values = valuesFromText(fields.text.value);
      templateBody.innerHTML = "";
      const seen = {};
      parsed.fixed.forEach(function (part, index) {
        templateBody.appendChild(document.createTextNode(part));
        const slot = parsed.slots[index];
        if (!slot) return;
        const input = document.createElement("input");
        input.type = "text";
        input.className = "vTextField composer-slot";
        input.dataset.key = slot.key;
        input.placeholder = slot.label;
        input.setAttribute("aria-label", "Template variable " + (index + 1) + " (" + slot.label + ")");
        input.value = values[slot.key] || "";
        if (seen[slot.key]) input.tabIndex = -1;  // a named variable used twice is typed once
        seen[slot.key] = true;
        templateBody.appendChild(input);
      });
      markLengths();
      if (recompose) {
        compose();
        schedule();
      }
    }

    function markLengths() {
      templateBody.querySelectorAll("input[data-key]").forEach(function (input) {
        // A {{first_name}} in a slot stands for each recipient's value: the estimate measures it once filled (and warns
        // of the recipients it makes too long); here only the slot's own characters count, as the estimate's check.
        const tooLong = input.value.replace(/\{\{\s*[\w.-]+\s*\}\}/g, "").length > MAX_VARIABLE;
        input.classList.toggle("is-too-long", tooLong);
        input.title = tooLong ? "DLT allows at most 30 characters per variable" : "";
      });
    }

    templateBody.addEventListener("input", function (event) {
      const input = event.target;
      if (!input.dataset.key) return;
      // A named variable used twice holds one value: keep its twins in step.
      templateBody.querySelectorAll('input[data-key="' + input.dataset.key + '"]').forEach(function (twin) {
        if (twin !== input) twin.value = input.value;
      });
      markLengths();
      compose();
    });

    // --- Variables -----------------------------------------------------------------------------------------------

    const variablesBox = byId("composer-variables");
    const chips = variablesBox.querySelector("[data-composer=chips]");

    function addChip(name, isAttribute) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "composer-chip" + (isAttribute ? " is-attribute" : "");
      chip.textContent = "{{" + name + "}}";
      chip.title = isAttribute ? "Contact attribute" : "Contact field";
      chip.addEventListener("mousedown", function (event) { event.preventDefault(); });  // keep the cursor where it is
      chip.addEventListener("click", function () { insert("{{" + name + "}}"); });
      chips.appendChild(chip);
    }

    function insert(token) {
      let target = lastTarget && document.body.contains(lastTarget) && !lastTarget.readOnly ? lastTarget : null;
      if (!target) {
        target = parsed ? (templateBody.querySelector("input[data-key]:placeholder-shown") ||
                           templateBody.querySelector("input[data-key]")) : fields.text;
      }
      if (!target) return;
      const start = target.selectionStart === null ? target.value.length : target.selectionStart;
      const end = target.selectionEnd === null ? start : target.selectionEnd;
      target.value = target.value.slice(0, start) + token + target.value.slice(end);
      target.focus();
      target.setSelectionRange(start + token.length, start + token.length);
      target.dispatchEvent(new Event("input", {bubbles: true}));
      lastTarget = target;
    }

    config.variables.fields.forEach(function (name) { addChip(name, false); });
    config.variables.attributes.forEach(function (name) { addChip(name, true); });
    form.addEventListener("focusin", function (event) {
      if (event.target === fields.text || (event.target.dataset && event.target.dataset.key)) lastTarget = event.target;
    });

    // The slots and the variables go with the text field.
    if (fields.text) {
      const container = fields.text.closest(".flex-container") || fields.text;
      container.parentNode.insertBefore(variablesBox, container.nextSibling);
      container.parentNode.insertBefore(templateBox, container.nextSibling);
      variablesBox.hidden = false;
    }

    // --- Estimate ----------------------------------------------------------------------------------------------------

    const part = function (name) { return panel.querySelector('[data-estimate="' + name + '"]'); };
    // One estimate on its way at a time: on a large audience it takes a second or more, and one sent at each pause
    // in the typing piled up on the server, each slowing the others. What changes meanwhile is asked for once, when
    // the answer comes, and an answer to a form changed since is not shown: the panel keeps saying "updating…".
    let timer = null;
    let inFlight = false;
    let edited = false;  // the form changed since the estimate on its way read it

    function schedule() {
      window.clearTimeout(timer);
      edited = true;
      panel.classList.add("is-loading");
      part("status").textContent = "updating…";
      timer = window.setTimeout(run, config.debounce || 400);
    }

    function run() {
      timer = null;
      if (loading) {  // a list of senders or templates is on its way: estimate what the form will hold
        schedule();
        return;
      }
      if (inFlight) return;  // asked again when it answers
      inFlight = true;
      edited = false;
      fetch(config.estimate_url, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: {Accept: "application/json", "X-Requested-With": "XMLHttpRequest"},
      })
        .then(function (response) {
          if (!response.ok) throw new Error(response.statusText);
          return response.json();
        })
        .then(function (data) { if (!edited) render(data); })
        .catch(function () {
          if (edited) return;
          panel.classList.remove("is-loading");
          part("status").textContent = "";
          part("error").hidden = false;
        })
        .finally(function () {
          inFlight = false;
          if (edited && timer === null) run();  // changed while on its way, and the pause after it is over
        });
    }

    function setText(name, value) { part(name).textContent = value === null || value === undefined ? "" : number(value); }

    function render(data) {
      panel.classList.remove("is-loading");
      part("error").hidden = true;
      part("status").textContent = "up to date";
      part("body").hidden = !!data.empty;
      if (!data.empty) {
        ["sendable", "audience", "suppressed_total", "encoding", "parts", "length", "per_part", "currency",
         "frames", "frame_size", "parts_total"].forEach(function (name) { setText(name, data[name]); });
        part("cost").textContent = money(data.cost);
        // Texts differ by recipient (names, attributes): the cost counts each one's parts, said in words.
        part("parts_summary").hidden = !data.parts_summary;
        part("parts_summary").textContent = data.parts_summary || "";
        part("first_only").hidden = !data.parts_summary;
        const reasons = part("suppressed");
        reasons.innerHTML = "";
        Object.keys(data.suppressed).forEach(function (reason) {
          const item = document.createElement("li");
          item.textContent = reason + ": " + number(data.suppressed[reason]);  // "inactive contact: 8"
          reasons.appendChild(item);
        });
        const ucs2 = data.encoding === "UCS-2" && data.ucs2_character;
        part("ucs2").hidden = !ucs2;
        if (ucs2) {
          setText("ucs2_character", data.ucs2_character);
          setText("ucs2_position", data.ucs2_position + 1);
        }
        part("deferred").hidden = !data.deferred_until;
        setText("deferred_until", data.deferred_until_display || "");
        // Worth knowing, not stopping the launch (recipients outside the window on their own clock).
        const warnings = part("warnings");
        warnings.innerHTML = "";
        (data.warnings || []).forEach(function (warning) {
          const item = document.createElement("li");
          item.textContent = warning;
          warnings.appendChild(item);
        });
        part("warnings_box").hidden = !(data.warnings || []).length;
        renderSample(data);
      }
      renderProblems(data.problems);
      // What it leads to follows the form: a scheduled campaign's send time cleared, it goes back to draft when saved.
      if (data.problems_heading) part("problems_heading").textContent = data.problems_heading;
      if (data.ready) part("ready").textContent = data.ready;
      part("ready").hidden = !data.ok;
    }

    function renderSample(data) {
      const box = part("sample_box");
      const sample = part("text_sample");
      box.hidden = !data.text_sample;
      sample.innerHTML = "";
      const text = data.text_sample || "";
      const at = data.encoding === "UCS-2" && data.ucs2_character ? text.indexOf(data.ucs2_character) : -1;
      if (at >= 0) {
        sample.appendChild(document.createTextNode(text.slice(0, at)));
        const mark = document.createElement("mark");
        mark.className = "ucs2-char";
        mark.textContent = data.ucs2_character;
        sample.appendChild(mark);
        sample.appendChild(document.createTextNode(text.slice(at + data.ucs2_character.length)));
      } else {
        sample.textContent = text;
      }
      const missing = Object.keys(data.missing_variables || {});
      part("missing").hidden = !missing.length;
      part("missing").textContent = missing.map(function (name) {
        return number(data.missing_variables[name]) + " recipient(s) have no " + name + ": it will be empty for them.";
      }).join(" ");
    }

    function renderProblems(problems) {
      const list = part("problems");
      list.innerHTML = "";
      form.querySelectorAll(".form-row.estimate-problem").forEach(function (row) { row.classList.remove("estimate-problem"); });
      (problems || []).forEach(function (problem) {
        const item = document.createElement("li");
        item.dataset.field = problem.field;
        const link = document.createElement("a");
        link.href = "#";
        const label = document.createElement("strong");
        label.textContent = labelOf(problem.field);
        link.appendChild(label);
        link.appendChild(document.createTextNode(": " + problem.message));
        link.addEventListener("click", function (event) {
          event.preventDefault();
          const input = byId("id_" + problem.field) || form.querySelector('[name^="' + problem.field + '"]');
          if (input) {
            input.scrollIntoView({block: "center"});
            input.focus();
          }
        });
        item.appendChild(link);
        list.appendChild(item);
        const row = problem.field && form.querySelector(".form-row.field-" + problem.field);
        if (row) row.classList.add("estimate-problem");
      });
      part("problems_box").hidden = !(problems && problems.length);
    }

    // --- Wiring ------------------------------------------------------------------------------------------------------

    // The campaign's name plays no part in the estimate: typing it asks for none.
    const nameField = byId("id_name");
    form.addEventListener("input", function (event) { if (event.target !== nameField) schedule(); });
    form.addEventListener("change", function (event) {
      const target = event.target;
      if (target === nameField) return;
      if (target === fields.account || target === fields.channel) loadSenders().catch(function () {});
      else if (target === fields.sender) loadTemplates().catch(function () {});
      else if (target === fields.template) showTemplate(true);
      schedule();
    });
    if (window.django && window.django.jQuery) {
      // The autocomplete widgets (select2) announce their changes through jQuery only.
      window.django.jQuery(form).on("select2:select select2:unselect select2:clear", schedule);
    }

    limitChannels(true);
    const initial = fields.sender && fields.sender.value ? loadTemplates() : Promise.resolve();
    initial.catch(function () {}).then(schedule);
  });
})();
