// The front door: what this is, the years and sources held (read from the API), and links.

import * as api from "./api.js";
import { h } from "./dom.js";
import { applyLabels, langFrom, named, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
let lang = langFrom(location.search);
let held = { years: [], sources: [] };

function render() {
  applyLabels(document, lang);
  $("lang").textContent = t(lang, "switch_lang");
  $("lang").lang = lang === "zh" ? "en" : "zh-Hans";
  $("to-dashboard").href = `dashboard?lang=${lang}`;
  $("years").replaceChildren(
    ...held.years.map((y) =>
      h(
        "li",
        {},
        h("a", { href: `dashboard?year=${y.year}&lang=${lang}` }, t(lang, "year_line", { year: y.year, count: y.observation_count })),
        " · ",
        h("a", { href: api.observationsUrl({ year: y.year, format: "csv" }), download: true }, t(lang, "year_csv")),
      ),
    ),
  );
  $("sources").replaceChildren(
    ...held.sources.map((s) =>
      h(
        "li",
        { "data-source": s.id },
        h("cite", {}, named(s, "title", lang)),
        ` (${named(s, "publisher", lang)}, ${s.published_on}) `,
        s.text_url ? h("a", { href: s.text_url.replace(/^\//, "") }, t(lang, "source_text")) : t(lang, "source_no_text"),
        s.url ? [" · ", h("a", { href: s.url, rel: "external noopener" }, t(lang, "source_original"))] : null,
      ),
    ),
  );
  const total = held.years.reduce((sum, y) => sum + y.observation_count, 0);
  $("csv-paged").hidden = total <= 1000;
  history.replaceState(null, "", `?lang=${lang}`);
}

$("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  render();
});

render();
Promise.all([api.years(), api.sources()])
  .then(([years, sources]) => {
    held = { years: [...years].sort((a, b) => b.year - a.year), sources };
    render();
    document.body.dataset.ready = "true";
  })
  .catch((error) => {
    $("status").textContent = t(lang, "load_failed", { detail: error.message });
    $("status").setAttribute("role", "alert");
  });
