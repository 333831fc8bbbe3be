// The chart panel: Apache ECharts (the vendored copy, a global `echarts` from its own script
// tag), with the same numbers in a table beside it for screen readers and copying.

import { h } from "./dom.js";
import { number, qualifierPrefix, withUnit } from "./format.js";
import { named, t } from "./i18n.js";

let chart = null;
let chartLang = null;

function instance(element, lang) {
  // ECharts' own words (the aria description, the tooltip) follow the page's language.
  if (chart && chartLang !== lang) {
    chart.dispose();
    chart = null;
  }
  if (!chart) {
    chart = globalThis.echarts.init(element, null, { locale: lang === "zh" ? "ZH" : "EN" });
    chartLang = lang;
    new ResizeObserver(() => chart?.resize()).observe(element);
  }
  return chart;
}

const axisNumber = (lang) => (value) => number(value, lang);

function barOption(points, lang) {
  return {
    aria: { enabled: true },
    animation: false, // a chart that is drawn at once: no motion to wait for or be bothered by
    grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
    tooltip: { trigger: "axis", valueFormatter: axisNumber(lang) },
    xAxis: {
      type: "category",
      data: points.map((p) => p.label),
      axisLabel: { interval: 0, fontSize: 13 },
    },
    yAxis: { type: "value", axisLabel: { formatter: axisNumber(lang) } },
    series: [
      {
        type: "bar",
        data: points.map((p) => p.value),
        barMaxWidth: 64,
        itemStyle: { color: "#b22222" },
        label: { show: true, position: "top", formatter: ({ value }) => number(value, lang) },
      },
    ],
  };
}

function lineOption(years, lines, lang) {
  return {
    aria: { enabled: true },
    animation: false,
    grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
    legend: { top: 0, type: "scroll" },
    tooltip: { trigger: "axis", valueFormatter: axisNumber(lang) },
    xAxis: { type: "category", data: years.map(String) },
    yAxis: { type: "value", axisLabel: { formatter: axisNumber(lang) } },
    series: lines.map((line) => ({
      type: "line",
      name: line.name,
      data: years.map((year) => line.values.get(year) ?? null),
      connectNulls: false,
      symbolSize: 8,
    })),
  };
}

function table(lang, header, rows) {
  return h(
    "details",
    { class: "chart-table" },
    h("summary", {}, t(lang, "chart_table")),
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, header.map((cell) => h("th", { scope: "col" }, cell)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
    ),
  );
}

const shown = (point, unit, unitName, lang) =>
  withUnit(`${qualifierPrefix(point.qualifier, lang)}${number(point.value, lang)}`, unit, unitName);

/** A bar chart of the districts' values of one indicator in the chosen year. */
export function drawDistricts(panel, rows, lang) {
  const first = rows[0];
  const unitName = named(first, "unit_name", lang);
  const points = rows.map((row) => ({
    label: named(row, "region_name", lang),
    value: row.value,
    qualifier: row.qualifier,
  }));
  panel.title.textContent = t(lang, "chart_title_districts", {
    name: named(first, "indicator_name", lang),
    year: first.year,
  });
  panel.chart.hidden = false;
  instance(panel.chart, lang).setOption(barOption(points, lang), true);
  panel.table.replaceChildren(
    table(
      lang,
      [t(lang, "region_col"), t(lang, "value_col")],
      points.map((p) => [p.label, shown(p, first.unit, unitName, lang)]),
    ),
  );
}

/** A line per region of one indicator across the years (`/indicators/{code}/series`). */
export function drawSeries(panel, answer, lang) {
  const { indicator, series } = answer;
  const unitName = named(indicator.unit, "name", lang);
  const years = [...new Set(series.flatMap((s) => s.points.map((p) => p.year)))].sort();
  const lines = series.map((s) => ({
    name: named(s, "region_name", lang),
    values: new Map(s.points.map((p) => [p.year, p.value])),
  }));
  panel.title.textContent = t(lang, "chart_title_years", { name: named(indicator, "name", lang) });
  panel.chart.hidden = false;
  instance(panel.chart, lang).setOption(lineOption(years, lines, lang), true);
  panel.table.replaceChildren(
    table(
      lang,
      [t(lang, "region_col"), t(lang, "year_col"), t(lang, "value_col")],
      series.flatMap((s) =>
        s.points.map((p) => [
          named(s, "region_name", lang),
          String(p.year),
          shown(p, p.unit, unitName, lang),
        ]),
      ),
    ),
  );
}

/** No chart: say why. */
export function drawNothing(panel, message) {
  panel.title.textContent = message;
  panel.chart.hidden = true;
  panel.table.replaceChildren();
}
