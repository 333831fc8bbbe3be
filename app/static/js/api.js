// The public JSON API, read as any dashboard team would read it. URLs are relative to the
// page, so the pages work behind a path prefix too.

const API = "api/v1";
const PAGE = 1000; // the API's largest page: a year's figures fit in one call

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      detail = (await response.json()).detail ?? detail;
    } catch {
      // not a problem document: the status line says enough
    }
    throw new Error(detail);
  }
  return response.json();
}

/** Every row of a paged list, following `next` (one call while a year fits in a page). */
async function getAll(url) {
  const rows = [];
  let next = url;
  while (next) {
    const page = await getJSON(next);
    rows.push(...page.data);
    next = page.next ? page.next.replace(/^\//, "") : null;
  }
  return rows;
}

const query = (params) =>
  new URLSearchParams(
    Object.entries(params).filter(([, value]) => value !== "" && value !== null),
  ).toString();

export const years = async () => (await getJSON(`${API}/years`)).data;
export const categories = async () => (await getJSON(`${API}/categories`)).data;
export const sources = async () => (await getJSON(`${API}/sources`)).data;
export const series = (indicator) =>
  getJSON(`${API}/indicators/${encodeURIComponent(indicator)}/series`);

export const observationsUrl = (params) => `${API}/observations?${query({ ...params, limit: PAGE })}`;
export const comparisonsUrl = (params) => `${API}/comparisons?${query({ ...params, limit: PAGE })}`;

export const observations = (year) => getAll(observationsUrl({ year }));
export const comparisons = (year, base) => getAll(comparisonsUrl({ year, base_year: base }));
