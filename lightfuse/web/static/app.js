/* Lightfuse UI behaviour. No inline scripts anywhere (the CSP forbids them): pages carry data in
   <script type="application/json"> blocks and data-* attributes, and this file reads them. */
(function () {
  "use strict";

  // Forms that destroy something ask first.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);

  // A time-range select applies itself (requestSubmit keeps htmx in charge of htmx forms).
  document.addEventListener("change", function (e) {
    var el = e.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) {
      if (el.form.requestSubmit) el.form.requestSubmit(); else el.form.submit();
    }
  });

  document.addEventListener("click", function (e) {
    var copy = e.target.closest && e.target.closest("button.copy");
    if (copy && navigator.clipboard) {
      navigator.clipboard.writeText(copy.dataset.copy).then(
        function () { copy.textContent = "Copied"; },
        function () { copy.textContent = "Select and copy"; }
      );
    }
    // the observation panel is swapped by htmx; move the highlight in the tree ourselves
    var node = e.target.closest && e.target.closest(".tree [data-node]");
    if (node) {
      document.querySelectorAll(".tree [data-node].selected").forEach(function (n) { n.classList.remove("selected"); });
      node.classList.add("selected");
    }
  });

  // --- charts (uPlot) ------------------------------------------------------------------------------------
  var DAY = 86400;

  function money(v) {
    if (v == null) return "";
    if (v === 0) return "$0";
    return "$" + (Math.abs(v) < 0.01 ? v.toPrecision(2) : v.toFixed(2));
  }

  function compact(v) {
    if (v == null) return "";
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "B";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return String(Math.round(v * 100) / 100);
  }

  function bars() { return window.uPlot.paths.bars({ size: [0.6, 48] }); }

  function daySeries(el, data, key, label, fmt, asBars) {
    var xs = data.byDay.map(function (d) { return d.day * DAY; });
    var ys = data.byDay.map(function (d) { return d[key]; });
    return new window.uPlot({
      width: Math.max(el.clientWidth, 200),
      height: 200,
      legend: { show: true },
      scales: { x: { time: true, range: function (u, min, max) { return [min - DAY / 2, max + DAY / 2]; } }, y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      axes: [{}, { values: function (u, ticks) { return ticks.map(fmt); }, size: 72 }],
      series: [
        { value: function (u, v) { return v == null ? "" : new Date(v * 1000).toISOString().slice(0, 10); } },
        { label: label, stroke: "#2563eb", fill: "rgba(37,99,235,0.25)", width: 2,
          paths: asBars ? bars() : undefined, points: { show: !asBars && xs.length < 40 },
          value: function (u, v) { return fmt(v); } }
      ]
    }, [xs, ys], el);
  }

  function modelBars(el, data) {
    var models = data.byModel;
    if (!models.length) { el.textContent = "No model usage in this range."; el.classList.add("empty"); return null; }
    var xs = models.map(function (m, i) { return i; });
    var names = models.map(function (m) { return m.model; });
    return new window.uPlot({
      width: Math.max(el.clientWidth, 200),
      height: 200,
      scales: { x: { time: false, range: [-0.5, models.length - 0.5] },
                y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      axes: [
        { splits: function () { return xs; }, values: function (u, ticks) { return ticks.map(function (i) { return names[i] || ""; }); } },
        { values: function (u, ticks) { return ticks.map(money); }, size: 72 }
      ],
      series: [
        { value: function (u, i) { return i == null ? "" : names[i]; } },
        { label: "Cost", stroke: "#059669", fill: "rgba(5,150,105,0.3)", paths: bars(), points: { show: false },
          value: function (u, v) { return money(v); } }
      ]
    }, [xs, models.map(function (m) { return m.totalCost; })], el);
  }

  var CHARTS = {
    "traces-by-day": function (el, d) { return daySeries(el, d, "traces", "Traces", compact, true); },
    "cost-by-day": function (el, d) { return daySeries(el, d, "totalCost", "Cost", money, false); },
    "tokens-by-day": function (el, d) { return daySeries(el, d, "totalTokens", "Tokens", compact, true); },
    "cost-by-model": modelBars
  };

  function drawCharts(root) {
    var source = document.getElementById("dashboard-data");
    if (!source || !window.uPlot) return;
    var data = JSON.parse(source.textContent);
    (root.querySelectorAll ? root : document).querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var make = CHARTS[el.dataset.chart];
      if (!make) return;
      el.dataset.drawn = "1";
      var chart = make(el, data);
      if (chart) {
        window.addEventListener("resize", function () {
          chart.setSize({ width: Math.max(el.clientWidth, 200), height: 200 });
        });
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (e) { drawCharts(e.target); });
})();
