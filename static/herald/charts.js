// Herald's charts: thin helpers over Chart.js (static/herald/vendor/chart.umd.min.js) that take their text and
// grid colours from Django admin's CSS variables, so that charts read well in the light and the dark theme.
"use strict";
window.HeraldCharts = (function () {
  const STATUS_COLOURS = {
    pending: "#9e9e9e", sending: "#c5d9e3", queued: "#b0b0b0", submitted: "#79aec8", sent: "#417690",
    delivered: "#2e9e5b", read: "#1e8449", clicked: "#145a32",
    rejected: "#c0392b", undelivered: "#e67e22", expired: "#b7950b", failed: "#922b21",
    not_sent: "#5d6d7e", suppressed: "#8e7cc3",
  };
  const SERIES = ["#417690", "#2e9e5b", "#e67e22", "#8e7cc3", "#c0392b", "#17a589", "#b7950b", "#5d6d7e"];

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function theme() {
    const text = cssVar("--body-fg", "#333");
    const grid = cssVar("--hairline-color", "#e8e8e8");
    if (window.Chart) {
      Chart.defaults.color = text;
      Chart.defaults.borderColor = grid;
      Chart.defaults.font.family = cssVar("--font-family-primary", "sans-serif");
    }
    return {text: text, grid: grid};
  }

  function available() {
    return typeof window.Chart === "function";
  }

  // Create the chart on first use, update its data afterwards (no re-animation on every poll).
  function draw(holder, canvas, config) {
    if (!available() || !canvas) return null;
    if (holder.chart) {
      holder.chart.data.labels = config.data.labels;
      config.data.datasets.forEach(function (dataset, index) {
        if (holder.chart.data.datasets[index]) Object.assign(holder.chart.data.datasets[index], dataset);
        else holder.chart.data.datasets.push(dataset);
      });
      holder.chart.data.datasets.length = config.data.datasets.length;
      holder.chart.update("none");
      return holder.chart;
    }
    theme();
    config.options = Object.assign({responsive: true, maintainAspectRatio: false, animation: {duration: 300}}, config.options || {});
    holder.chart = new Chart(canvas, config);
    canvas.dataset.ready = "true";
    return holder.chart;
  }

  return {STATUS_COLOURS: STATUS_COLOURS, SERIES: SERIES, draw: draw, theme: theme, available: available};
})();
