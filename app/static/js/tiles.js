// One tile per indicator x region: the value in text, the change against the base year, and
// the sentence it comes from (a <details>: opens on tap, on click and from the keyboard).

import { h } from "./dom.js";
import { changeText, valueText } from "./format.js";
import { named, t } from "./i18n.js";

export const isDistrict = (region) => !region.endsWith("00"); // GB/T 2260: XXXX00 is a city

function sourceDetails(quote, lang, onOpen) {
  if (!quote) return null;
  const link = h("p", { class: "source-link" });
  const details = h(
    "details",
    { class: "tile-source", "data-source": quote.id },
    h("summary", {}, t(lang, "source")),
    h("blockquote", { lang: "zh-Hans" }, quote.quote),
    link,
  );
  details.addEventListener("toggle", () => details.open && onOpen(quote.id, link));
  return details;
}

function tile(row, quote, lang, actions) {
  const unitName = named(row, "unit_name", lang);
  const name = named(row, "indicator_name", lang);
  const value =
    row.value === null ? "—" : valueText(row.value, row.qualifier, row.unit, unitName, lang);
  return h(
    "li",
    {
      class: "tile",
      "data-indicator": row.indicator,
      "data-region": row.region,
      "data-direction": row.direction,
    },
    h("h3", { class: "tile-name" }, name),
    isDistrict(row.region) ? h("p", { class: "tile-region" }, named(row, "region_name", lang)) : null,
    h("p", { class: "tile-value" }, value),
    h(
      "p",
      { class: `tile-change ${row.direction}`, "data-direction": row.direction },
      changeText(row, unitName, lang),
    ),
    h(
      "div",
      { class: "tile-actions" },
      sourceDetails(quote, lang, actions.openSource),
      h(
        "button",
        {
          type: "button",
          class: "chart-button",
          "aria-label": t(lang, "chart_button_label", { name }),
          onclick: () => actions.chart(row.indicator),
        },
        t(lang, "chart_button"),
      ),
    ),
  );
}

/** The sections of the chosen categories, each with its tiles. */
export function renderTiles(container, { categories, rows, quotes, lang, actions }) {
  container.replaceChildren(
    ...categories.map((category) => {
      const own = rows.filter((row) => row.category === category.code);
      return h(
        "section",
        { class: "category", "data-category": category.code },
        h("h2", {}, named(category, "name", lang)),
        own.length
          ? h(
              "ul",
              { class: "tiles" },
              own.map((row) => tile(row, quotes.get(`${row.indicator}|${row.region}`), lang, actions)),
            )
          : h("p", { class: "empty" }, t(lang, "no_figures")),
      );
    }),
  );
}
