// Figures as people read them: grouped digits, the qualifier in words (约 / about, ≥, ≤), and
// a change with its direction, in percentage points for rates.

import { t } from "./i18n.js";

const LOCALES = { zh: "zh-CN", en: "en-GB" };
const ARROWS = { up: "↑", down: "↓", flat: "→", unknown: "↕" };
const BOUNDS = { at_least: "≥", at_most: "≤" };

export function number(value, lang, sign = false) {
  return new Intl.NumberFormat(LOCALES[lang], {
    maximumFractionDigits: 6,
    signDisplay: sign ? "exceptZero" : "auto",
  }).format(value);
}

/** "≥", "≤", "约" / "about " or nothing, before a number. */
export function qualifierPrefix(qualifier, lang) {
  if (qualifier === "approximate") return t(lang, "about");
  return BOUNDS[qualifier] ?? "";
}

/** A number with its unit: "608 人次", "96.6%". */
export function withUnit(text, unit, unitName) {
  return unit === "percent" ? `${text}%` : `${text} ${unitName}`;
}

/** A value as the tile shows it: "≥300 场", "约800 人次", "10,273,000 元". */
export function valueText(value, qualifier, unit, unitName, lang) {
  return withUnit(`${qualifierPrefix(qualifier, lang)}${number(value, lang)}`, unit, unitName);
}

/** The change line of a comparison row: what /comparisons says, in words. */
export function changeText(row, unitName, lang) {
  const reasons = { no_base_value: "no_earlier", no_current_value: "no_current" };
  if (reasons[row.reason]) {
    return t(lang, reasons[row.reason], { base: row.base_year, year: row.year });
  }
  if (row.reason === "unit_changed") return t(lang, "unit_changed");
  if (row.reason === "not_a_series") return t(lang, "not_a_series");
  if (row.change_qualifier === "unbounded") return t(lang, "unbounded");
  const rate = row.change_pp !== null;
  // A bound of the change when only one side is bounded; the published difference otherwise.
  const amount = { at_least: row.change_min, at_most: row.change_max }[row.change_qualifier];
  const figure = `${qualifierPrefix(row.change_qualifier, lang)}${number(amount ?? row.change, lang, true)}`;
  const change = rate ? `${figure}${t(lang, "pp")}` : withUnit(figure, row.unit, unitName);
  const pct = row.change_pct === null ? "" : ` (${number(row.change_pct, lang, true)}%)`;
  const zero = row.reason === "base_is_zero" ? t(lang, "from_zero") : "";
  return `${ARROWS[row.direction]} ${t(lang, row.direction)} ${change}${pct}${zero}${t(lang, "versus", { base: row.base_year })}`;
}
