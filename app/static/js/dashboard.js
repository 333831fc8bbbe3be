// The dashboard: four API calls for the first view (years, categories, then the chosen
// year's comparison and its observations, for the quotes); a series or the sources list only
// when asked for.

import * as api from "./api.js";
import { drawDistricts, drawNothing, drawSeries } from "./charts.js";
import { h, setOptions } from "./dom.js";
import { applyLabels, named, t } from "./i18n.js";
import { readState, writeState } from "./state.js";
import { isDistrict, renderTiles } from "./tiles.js";

const $ = (id) => document.getElementById(id);
const state = readState(location.search);
const data = { years: [], categories: [], rows: [], quotes: new Map() };
const cache = { series: new Map(), sources: null };
const panel = { title: $("chart-title"), chart: $("chart"), table: $("chart-data") };

function say(message, alert = false) {
  const status = $("status");
  status.textContent = message;
  status.setAttribute("role", alert ? "alert" : "status");
}

function baseOptions(year) {
  const earlier = data.years.filter((y) => y < year);
  const options = earlier.includes(year - 1) ? earlier : [year - 1, ...earlier];
  return options.sort((a, b) => b - a);
}

function chooseYears() {
  const held = data.years;
  if (!held.includes(state.year)) state.year = held[0];
  const bases = baseOptions(state.year);
  if (!bases.includes(state.base)) state.base = data.years.find((y) => y < state.year) ?? bases[0];
}

async function loadYear() {
  const [rows, observations] = await Promise.all([
    api.comparisons(state.year, state.base),
    api.observations(state.year),
  ]);
  data.rows = rows;
  data.quotes = new Map(observations.map((o) => [`${o.indicator}|${o.region}`, o.source]));
}

async function loadBase() {
  data.rows = await api.comparisons(state.year, state.base);
}

async function openSource(id, link) {
  if (link.childElementCount) return;
  cache.sources ??= api.sources();
  const source = (await cache.sources).find((s) => s.id === id);
  if (!source || link.childElementCount) return;
  link.append(t(state.lang, "source_of", { title: named(source, "title", state.lang) }), " ");
  if (source.text_url) {
    link.append(h("a", { href: source.text_url.replace(/^\//, "") }, t(state.lang, "source_full_text")));
  }
}

function showChart(indicator) {
  state.indicator = indicator;
  state.chart = "years";
  render();
  $("chart-panel").scrollIntoView({ block: "start" });
}

function renderControls(visibleCategories) {
  const lang = state.lang;
  setOptions($("year"), data.years.map((y) => [y, String(y)]), state.year);
  setOptions(
    $("base"),
    baseOptions(state.year).map((y) => [y, data.years.includes(y) ? String(y) : t(lang, "no_data_year", { year: y })]),
    state.base,
  );
  setOptions(
    $("category"),
    [["", t(lang, "all_categories")], ...data.categories.map((c) => [c.code, named(c, "name", lang)])],
    state.category,
  );
  const filter = { year: state.year, category: state.category };
  $("csv-observations").href = api.observationsUrl({ ...filter, format: "csv" });
  $("csv-comparisons").href = api.comparisonsUrl({ ...filter, base_year: state.base, format: "csv" });
  $("lang").textContent = t(lang, "switch_lang");
  $("lang").lang = lang === "zh" ? "en" : "zh-Hans";
  const count = data.rows.filter((row) => visibleCategories.has(row.category)).length;
  say(t(lang, "status_line", { year: state.year, base: state.base, count }));
}

async function renderChart(rows) {
  const lang = state.lang;
  const codes = [...new Set(rows.map((row) => row.indicator))];
  const withDistricts = new Set(rows.filter((r) => isDistrict(r.region) && r.value !== null).map((r) => r.indicator));
  const choices = state.chart === "districts" ? codes.filter((c) => withDistricts.has(c)) : codes;
  if (!choices.includes(state.indicator)) state.indicator = choices[0] ?? "";
  const names = new Map(rows.map((row) => [row.indicator, named(row, "indicator_name", lang)]));
  setOptions($("chart-indicator"), choices.map((c) => [c, names.get(c)]), state.indicator);
  for (const kind of ["districts", "years"]) {
    $(`chart-${kind}`).setAttribute("aria-pressed", String(state.chart === kind));
  }
  if (!state.indicator) return drawNothing(panel, t(lang, state.chart === "districts" ? "chart_no_districts" : "chart_none"));
  if (state.chart === "districts") {
    const districts = rows.filter((r) => r.indicator === state.indicator && isDistrict(r.region) && r.value !== null);
    return drawDistricts(panel, districts, lang);
  }
  const code = state.indicator;
  if (!cache.series.has(code)) cache.series.set(code, api.series(code));
  const answer = await cache.series.get(code);
  if (state.indicator === code && state.chart === "years") drawSeries(panel, answer, state.lang);
}

function render() {
  const lang = state.lang;
  applyLabels(document, lang);
  const categories = data.categories.filter((c) => !state.category || c.code === state.category);
  const visible = new Set(categories.map((c) => c.code));
  renderControls(visible);
  const rows = data.rows.filter((row) => visible.has(row.category));
  renderTiles($("tiles"), {
    categories,
    rows,
    quotes: data.quotes,
    lang,
    actions: { openSource, chart: showChart },
  });
  writeState(state);
  renderChart(rows).catch(failed);
}

function failed(error) {
  say(t(state.lang, "load_failed", { detail: error.message }), true);
}

async function changing(update, load) {
  update();
  try {
    say(t(state.lang, "loading"));
    await load?.();
    render();
  } catch (error) {
    failed(error);
  }
}

function listen() {
  $("year").addEventListener("change", (e) =>
    changing(() => {
      state.year = Number(e.target.value);
      state.base = data.years.find((y) => y < state.year) ?? state.year - 1;
    }, loadYear),
  );
  $("base").addEventListener("change", (e) => changing(() => (state.base = Number(e.target.value)), loadBase));
  $("category").addEventListener("change", (e) => changing(() => (state.category = e.target.value)));
  $("lang").addEventListener("click", () => changing(() => (state.lang = state.lang === "zh" ? "en" : "zh")));
  $("chart-indicator").addEventListener("change", (e) => changing(() => (state.indicator = e.target.value)));
  for (const kind of ["districts", "years"]) {
    $(`chart-${kind}`).addEventListener("click", () => changing(() => (state.chart = kind)));
  }
}

async function start() {
  applyLabels(document, state.lang);
  say(t(state.lang, "loading"));
  try {
    const [years, categories] = await Promise.all([api.years(), api.categories()]);
    data.years = years.map((y) => y.year).sort((a, b) => b - a);
    data.categories = categories;
    if (!data.years.length) {
      say(t(state.lang, "no_years"));
      document.body.dataset.ready = "true";
      return;
    }
    chooseYears();
    await loadYear();
    listen();
    render();
    document.body.dataset.ready = "true";
  } catch (error) {
    failed(error);
  }
}

start();
