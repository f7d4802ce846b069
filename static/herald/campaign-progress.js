// A campaign's live progress (templates/admin/campaigns/campaign/progress_panel.html): polls the progress endpoint
// every 1.5 s while the campaign prepares, sends or is paused (every 5 s while scheduled), redraws the bar, the
// counters, the errors, the funnel and status charts and the failures by reason, and shows the action buttons
// that apply to the new state, and the export of failed messages once a message has failed. Once the campaign is
// completed, cancelled or failed it draws the final report and stops.
"use strict";
(function () {
  const LIVE = ["preparing", "sending", "paused"];
  const STATUS_LABELS = {
    pending: "pending", sending: "sending", queued: "queued", submitted: "submitted", sent: "sent", delivered: "delivered",
    read: "read", clicked: "clicked", rejected: "rejected", undelivered: "undelivered", expired: "expired",
    failed: "failed", not_sent: "not sent", suppressed: "suppressed",
  };

  // An amount of money, which the JSON carries as a string ("9272.50"): two places, grouped as the counts are
  // ("9,272.50"), as the page first writes it (floatformat:"2g").
  function money(value) {
    return Number(value).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  }

  function get(data, path) {
    return path.split(".").reduce(function (value, key) { return value == null ? value : value[key]; }, data);
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text instanceof Node) td.appendChild(text);
    else td.textContent = text === null || text === undefined || text === "" ? "–" : String(text);
    row.appendChild(td);
    return td;
  }

  function badge(status) {
    const span = document.createElement("span");
    span.className = "herald-status herald-status-" + status;
    span.textContent = STATUS_LABELS[status] || status;
    return span;
  }

  document.addEventListener("DOMContentLoaded", function () {
    const root = document.getElementById("campaign-progress");
    const configElement = document.getElementById("progress-config");
    if (!root || !configElement) return;
    const config = JSON.parse(configElement.textContent);
    const charts = {funnel: {}, status: {}};
    const part = function (name) { return root.querySelector('[data-progress="' + name + '"]'); };
    let state = root.dataset.state;

    function render(data) {
      root.dataset.state = data.state;
      root.querySelectorAll("[data-progress]").forEach(function (element) {
        const name = element.dataset.progress;
        if (element.tagName === "TBODY" || /_box$|^report$|^bar$/.test(name)) return;
        let value = get(data, name);
        if (value === undefined) return;
        if (/^cost_/.test(name) && value !== null) value = money(value);
        element.textContent = typeof value === "number" ? value.toLocaleString("en-US") : (value === null ? "–" : value);
      });
      const bar = part("bar");
      bar.setAttribute("aria-valuenow", data.progress);
      bar.querySelector(".herald-bar-final").style.width = data.progress + "%";
      bar.querySelector(".herald-bar-sent").style.width = data.sent_progress + "%";
      const stateBadge = part("state_display");
      stateBadge.className = "herald-state herald-state-" + data.state;
      part("not_sent_box").hidden = !(data.groups.not_sent > 0);
      renderErrors(data);
      renderReport(data);
      showActions(data.state);
      // The export of failed messages is offered once there is a failure to export.
      document.querySelectorAll(".herald-export-failed-item").forEach(function (item) {
        item.hidden = !(data.groups.failed > 0);
      });
    }

    function renderErrors(data) {
      const body = part("errors");
      body.innerHTML = "";
      data.last_errors.forEach(function (error) {
        const row = document.createElement("tr");
        // Counted from 1, as the frame's page numbers it (seq counts from 0).
        cell(row, "request " + (error.seq + 1) + " (" + error.state + ", attempt " + error.attempts + ")");
        cell(row, error.error_code);
        cell(row, error.error);
        cell(row, error.words, "help");
        body.appendChild(row);
      });
      data.recent_failures.forEach(function (message) {
        const row = document.createElement("tr");
        const what = document.createElement("span");
        what.appendChild(badge(message.status));
        what.appendChild(document.createTextNode(" " + message.address));
        cell(row, what);
        cell(row, message.error_code);
        cell(row, message.reason);
        cell(row, message.words, "help");
        body.appendChild(row);
      });
      part("errors_box").hidden = !(data.last_errors.length || data.recent_failures.length);
    }

    function renderReport(data) {
      const report = part("report");
      const show = data.finished || data.groups.delivered > 0 || data.groups.failed > 0;
      report.hidden = !show;
      if (!show) return;
      const colours = window.HeraldCharts.STATUS_COLOURS;
      const stageColours = ["#79aec8", "#5d9cbc", "#417690", "#2e7d9a", "#2e9e5b"];
      window.HeraldCharts.draw(charts.funnel, document.getElementById("funnel-chart"), {
        type: "bar",
        data: {
          labels: data.funnel.map(function (stage) { return stage.label; }),
          datasets: [{label: "messages", data: data.funnel.map(function (stage) { return stage.count; }),
                      backgroundColor: stageColours}],
        },
        options: {indexAxis: "y", plugins: {legend: {display: false}},
                  scales: {x: {beginAtZero: true, ticks: {precision: 0}}}},
      });
      window.HeraldCharts.draw(charts.status, document.getElementById("status-chart"), {
        type: "doughnut",
        data: {
          // The legend says each status's count, as the cards above do; the tooltip adds its share.
          labels: data.breakdown.map(function (item) {
            return (STATUS_LABELS[item.status] || item.status) + " " + item.count.toLocaleString("en-US");
          }),
          datasets: [{data: data.breakdown.map(function (item) { return item.count; }),
                      backgroundColor: data.breakdown.map(function (item) { return colours[item.status] || "#999"; })}],
        },
        options: {plugins: {legend: {position: "right"}, tooltip: {callbacks: {label: function (item) {
          const total = item.dataset.data.reduce(function (sum, count) { return sum + count; }, 0);
          return " " + item.label + " (" + (100 * item.raw / total).toFixed(1) + "%)";
        }}}}},
      });
      const body = part("failures");
      body.innerHTML = "";
      data.failures.forEach(function (failure) {
        const row = document.createElement("tr");
        const count = document.createElement("a");
        count.href = config.messages_url + "&status=" + encodeURIComponent(failure.status);
        count.textContent = failure.count.toLocaleString("en-US");
        cell(row, count);
        cell(row, badge(failure.status));
        cell(row, failure.error_code);
        cell(row, failure.reason);
        cell(row, failure.words);
        body.appendChild(row);
      });
      part("failures_box").hidden = !data.failures.length;
    }

    function showActions(newState) {
      document.querySelectorAll(".herald-action[data-states]").forEach(function (item) {
        item.hidden = item.dataset.states.split(" ").indexOf(newState) < 0;
      });
    }

    function poll() {
      fetch(config.url, {credentials: "same-origin", headers: {Accept: "application/json"}})
        .then(function (response) {
          if (!response.ok) throw new Error(response.statusText);
          return response.json();
        })
        .then(function (data) {
          render(data);
          state = data.state;
          next();
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }

    function next() {
      if (LIVE.indexOf(state) >= 0) window.setTimeout(poll, config.interval || 1500);
      else if (state === "scheduled") window.setTimeout(poll, 5000);
    }

    render(JSON.parse(document.getElementById("progress-initial").textContent));
    next();
  });
})();
