// The console's only script (no inline scripts: the pages' CSP forbids them).
(function () {
  "use strict";
  // A live row the page already shows (rendered with the page, or sent again after a
  // reconnect) is not inserted twice.
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    var match = /id="([^"]+)"/.exec(event.detail.data || "");
    if (match && document.getElementById(match[1])) event.preventDefault();
  });

  function denialsChart() {
    var holder = document.getElementById("denials-chart");
    var source = document.getElementById("denials-data");
    if (!holder || !source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    if (!data.x.length) { holder.textContent = "No denials in the last 24 hours."; return; }
    var palette = ["#c0392b", "#2980b9", "#8e44ad", "#16a085", "#d35400", "#2c3e50", "#7f8c8d"];
    var series = [{}].concat(data.series.map(function (s, i) {
      return { label: s.reason, stroke: palette[i % palette.length], width: 2 };
    }));
    new uPlot({ width: Math.min(900, holder.clientWidth || 900), height: 260, series: series,
                axes: [{}, { label: "denials / hour" }] },
              [data.x].concat(data.series.map(function (s) { return s.counts; })), holder);
  }
  document.addEventListener("DOMContentLoaded", denialsChart);
})();
