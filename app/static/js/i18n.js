// Labels of both pages in Chinese and English. The data carry their own names (name_zh,
// name_en); these are the page's words around them.

export const LANGS = ["zh", "en"];

const MESSAGES = {
  zh: {
    site_title: "常州市退役军人事务统计数据",
    switch_lang: "English",
    landing_intro:
      "常州市退役军人事务局年度工作盘点中的数字（培训人次、招聘会场次、资金、优待证……），" +
      "以开放数据接口发布：每个数值都是精确的十进制数，并附有原文中陈述它的句子。",
    open_dashboard: "打开数据看板",
    years_held: "已有年份",
    year_line: "{year}年：{count}项数据",
    year_csv: "CSV",
    sources_held: "数据来源",
    source_original: "原网页",
    source_text: "存档全文",
    source_no_text: "未存全文",
    for_developers: "开发者",
    docs_link: "接口文档（Swagger UI）",
    redoc_link: "接口文档（ReDoc）",
    openapi_link: "OpenAPI 规范（JSON）",
    csv_all: "全部数据（CSV）",
    csv_paged: "每个文件最多1000行；其余见 Link 响应头。",
    json_index: "对 / 发送 Accept: application/json 可获得接口入口列表。",
    loading: "加载中……",
    no_years: "尚无数据。",
    load_failed: "数据加载失败：{detail}",
    home: "首页",
    dashboard_title: "常州市退役军人工作数据看板",
    year: "年份",
    base_year: "对比年份",
    category: "类别",
    all_categories: "全部类别",
    no_data_year: "{year}（无数据）",
    csv_observations: "下载本页数据（CSV，含出处）",
    csv_comparisons: "下载对比（CSV）",
    status_line: "{year}年共{count}项数据，与{base}年对比。",
    chart_heading: "图表",
    chart_indicator: "指标",
    chart_districts: "各区对比",
    chart_years: "历年变化",
    chart_no_districts: "此处没有分区数据；点击任一数据的“图表”按钮可查看历年变化。",
    chart_none: "本类别没有可绘制的指标。",
    chart_table: "图表数据",
    chart_title_districts: "{name}：{year}年各区",
    chart_title_years: "{name}：历年",
    region_col: "地区",
    year_col: "年份",
    value_col: "数值",
    no_figures: "本部分未列明数字。",
    source: "出处",
    source_full_text: "查看存档全文",
    source_of: "来源：{title}",
    chart_button: "图表",
    chart_button_label: "{name}：历年图表",
    up: "上升",
    down: "下降",
    flat: "持平",
    unknown: "升降无法确定",
    versus: "（较{base}年）",
    no_earlier: "无上年数据（{base}年无此项）",
    no_current: "{year}年无此项数据",
    unit_changed: "两年单位不同，无法比较",
    not_a_series: "单次事件，不作逐年比较",
    unbounded: "两年数字均为约数或下限，变化无法确定",
    from_zero: "（上年为0）",
    pp: "个百分点",
    about: "约",
    licence: "图表由 Apache ECharts（Apache License 2.0）绘制，由本服务器提供。",
  },
  en: {
    site_title: "Changzhou veterans affairs statistics",
    switch_lang: "中文",
    landing_intro:
      "The figures in the annual reviews of the Changzhou Municipal Bureau of Veterans " +
      "Affairs (people trained, job fairs held, funds spent, cards issued...) published as an " +
      "open API: every value an exact decimal, each with the sentence of the text that states it.",
    open_dashboard: "Open the dashboard",
    years_held: "Years held",
    year_line: "{year}: {count} figures",
    year_csv: "CSV",
    sources_held: "Sources",
    source_original: "original page",
    source_text: "stored full text",
    source_no_text: "no stored text",
    for_developers: "For developers",
    docs_link: "API docs (Swagger UI)",
    redoc_link: "API docs (ReDoc)",
    openapi_link: "OpenAPI schema (JSON)",
    csv_all: "Everything (CSV)",
    csv_paged: "At most 1,000 rows a file; the Link header names the next page.",
    json_index: "Send Accept: application/json to / for an index of the API's entry points.",
    loading: "Loading...",
    no_years: "No figures are held yet.",
    load_failed: "The data could not be loaded: {detail}",
    home: "Home",
    dashboard_title: "Changzhou veterans affairs dashboard",
    year: "Year",
    base_year: "Compared with",
    category: "Category",
    all_categories: "All categories",
    no_data_year: "{year} (no data)",
    csv_observations: "Download these figures (CSV, with sources)",
    csv_comparisons: "Download the comparison (CSV)",
    status_line: "{count} figures for {year}, compared with {base}.",
    chart_heading: "Chart",
    chart_indicator: "Indicator",
    chart_districts: "By district",
    chart_years: "Across years",
    chart_no_districts:
      "No district values here; a figure's Chart button shows it across years.",
    chart_none: "No indicator to chart in this category.",
    chart_table: "The chart's data",
    chart_title_districts: "{name}: districts in {year}",
    chart_title_years: "{name}: across years",
    region_col: "Region",
    year_col: "Year",
    value_col: "Value",
    no_figures: "This section states no figure.",
    source: "Source",
    source_full_text: "Read the stored full text",
    source_of: "From: {title}",
    chart_button: "Chart",
    chart_button_label: "{name}: chart across years",
    up: "up",
    down: "down",
    flat: "unchanged",
    unknown: "direction uncertain",
    versus: " vs {base}",
    no_earlier: "no earlier value (none for {base})",
    no_current: "no value for {year}",
    unit_changed: "units differ between the years: not comparable",
    not_a_series: "a single event, not a series: not compared",
    unbounded: "change unknown: both figures are bounds",
    from_zero: " (from zero)",
    pp: " pp",
    about: "about ",
    licence: "Charts drawn with Apache ECharts (Apache License 2.0), served by this server.",
  },
};

/** The message `key` in `lang`, with `{name}` placeholders filled from `params`. */
export function t(lang, key, params = {}) {
  const text = MESSAGES[lang][key] ?? MESSAGES.zh[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** A record's name in `lang`: `row[field + "_zh"]` or `row[field + "_en"]`. */
export function named(row, field, lang) {
  return row[`${field}_${lang}`] ?? row[`${field}_zh`];
}

/** Fill every `[data-i18n]` element under `root` and set the document's language. */
export function applyLabels(root, lang) {
  document.documentElement.lang = lang === "zh" ? "zh-Hans" : "en";
  for (const element of root.querySelectorAll("[data-i18n]")) {
    element.textContent = t(lang, element.dataset.i18n);
  }
}

/** The language the URL asks for (`?lang=en`); Chinese, the bureau's, by default. */
export function langFrom(search) {
  const lang = new URLSearchParams(search).get("lang");
  return LANGS.includes(lang) ? lang : "zh";
}
