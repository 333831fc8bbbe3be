// The view lives in the URL (year, base, category, language, chart), so a link shares it.

import { langFrom } from "./i18n.js";

const CHARTS = ["districts", "years"];

const int = (text) => (/^\d{4}$/.test(text ?? "") ? Number(text) : null);

export function readState(search) {
  const params = new URLSearchParams(search);
  return {
    year: int(params.get("year")),
    base: int(params.get("base")),
    category: params.get("category") ?? "",
    lang: langFrom(search),
    chart: CHARTS.includes(params.get("chart")) ? params.get("chart") : "districts",
    indicator: params.get("indicator") ?? "",
  };
}

export function writeState(state) {
  const params = new URLSearchParams({ year: state.year, base: state.base });
  if (state.category) params.set("category", state.category);
  params.set("lang", state.lang);
  if (state.chart !== "districts") params.set("chart", state.chart);
  if (state.indicator) params.set("indicator", state.indicator);
  history.replaceState(null, "", `?${params}`);
}
