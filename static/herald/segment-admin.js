// A segment's page: counts the contacts its rule selects, and lists the newest of them, 400 ms after the rule
// changes, before it is saved (templates/admin/contacts/segment/change_form.html).
"use strict";
(function () {
  const RULE_FIELDS = ["positive_tags", "positive_operator", "negative_tags", "negative_operator"];

  document.addEventListener("DOMContentLoaded", function () {
    const panel = document.getElementById("segment-live");
    const form = document.getElementById("segment_form");
    if (!panel || !form) return;
    const part = function (name) { return panel.querySelector('[data-segment="' + name + '"]'); };
    let timer = null;
    let sequence = 0;

    function row(contact) {
      const tr = document.createElement("tr");
      const phone = document.createElement("a");
      phone.href = contact.url;
      phone.textContent = contact.phone;
      [phone, contact.name, contact.email, contact.active ? "yes" : "no"].forEach(function (value) {
        const td = document.createElement("td");
        if (value instanceof Node) td.appendChild(value);
        else td.textContent = value;
        tr.appendChild(td);
      });
      return tr;
    }

    function refresh() {
      const mine = ++sequence;
      const body = new FormData();
      body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
      RULE_FIELDS.forEach(function (name) {
        form.querySelectorAll('[name="' + name + '"]').forEach(function (input) {
          if (input.tagName === "SELECT" && input.multiple) {
            Array.from(input.selectedOptions).forEach(function (option) { body.append(name, option.value); });
          } else {
            body.append(name, input.value);
          }
        });
      });
      fetch(panel.dataset.url, {method: "POST", body: body, credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (!response.ok) throw new Error(response.statusText);
          return response.json();
        })
        .then(function (data) {
          if (mine !== sequence) return;
          part("count").textContent = data.count_shown;  // formatted as on load (SegmentAdmin.preview_view)
          part("status").textContent = "";
          const rows = part("rows");
          rows.innerHTML = "";
          data.contacts.forEach(function (contact) { rows.appendChild(row(contact)); });
          if (!data.contacts.length) {
            const tr = document.createElement("tr");
            const td = document.createElement("td");
            td.colSpan = 4;
            td.textContent = "No contact matches.";
            tr.appendChild(td);
            rows.appendChild(tr);
          }
        })
        .catch(function () { if (mine === sequence) part("status").textContent = "could not count"; });
    }

    function schedule() {
      window.clearTimeout(timer);
      part("status").textContent = "counting…";
      timer = window.setTimeout(refresh, 400);
    }

    form.addEventListener("change", function (event) {
      if (RULE_FIELDS.indexOf(event.target.name) >= 0) schedule();
    });
    if (window.django && window.django.jQuery) {
      window.django.jQuery(form).on("select2:select select2:unselect select2:clear", schedule);
    }
    if (form.querySelector(".errornote")) schedule();  // a refused form shows the rule as posted, not as saved
  });
})();
