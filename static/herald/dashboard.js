// The admin index's dashboard (templates/admin/index.html): loads the fragment from the dashboard view, draws the
// 7-day delivery rate per provider account, and refreshes both every 15 seconds while the page is open.
"use strict";
(function () {
  const REFRESH = 15000;

  function drawDelivery(holder, root) {
    const canvas = root.querySelector("#delivery-chart");
    const days = document.getElementById("dashboard-days");
    const delivery = document.getElementById("dashboard-delivery");
    if (!canvas || !days || !delivery || !window.HeraldCharts) return;
    const labels = JSON.parse(days.textContent).map(function (day) { return day.slice(5); });
    const series = window.HeraldCharts.SERIES;
    holder.chart = null;  // the fragment brought a new canvas
    window.HeraldCharts.draw(holder, canvas, {
      type: "bar",
      data: {
        labels: labels,
        datasets: JSON.parse(delivery.textContent).map(function (account, index) {
          return {label: account.name, data: account.daily, borderColor: series[index % series.length],
                  backgroundColor: series[index % series.length]};
        }),
      },
      options: {scales: {y: {min: 0, max: 100, ticks: {callback: function (value) { return value + "%"; }}}},
                plugins: {legend: {position: "bottom"}}},
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    const root = document.getElementById("herald-dashboard");
    if (!root) return;
    const holder = {};
    function load() {
      fetch(root.dataset.url, {credentials: "same-origin"})
        .then(function (response) {
          if (!response.ok) throw new Error(response.statusText);
          return response.text();
        })
        .then(function (html) {
          if (holder.chart) holder.chart.destroy();
          root.innerHTML = html;
          drawDelivery(holder, root);
        })
        .catch(function () {
          if (!root.querySelector(".herald-dashboard-grid")) root.innerHTML = '<p class="errornote">The dashboard could not be loaded.</p>';
        })
        .finally(function () { window.setTimeout(load, REFRESH); });
    }
    load();
  });
})();
