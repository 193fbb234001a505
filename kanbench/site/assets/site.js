// kanbench report: sortable tables, the family filter, chart points that link to files.
"use strict";
function cellValue(td) {
  const v = td.getAttribute("data-sort");
  if (v !== null && v !== "" && !isNaN(Number(v))) return Number(v);
  return (v !== null ? v : td.textContent).trim().toLowerCase();
}
function sortTable(table, col, th) {
  const body = table.tBodies[0];
  const asc = !th.classList.contains("sorted-asc");
  table.querySelectorAll("th").forEach(h => h.classList.remove("sorted-asc", "sorted-desc"));
  th.classList.add(asc ? "sorted-asc" : "sorted-desc");
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
    const missing = v => v === "" || v === "-";
    if (missing(x) !== missing(y)) return missing(x) ? 1 : -1;  // blanks last either way
    if (x < y) return asc ? -1 : 1;
    if (x > y) return asc ? 1 : -1;
    return 0;
  });
  rows.forEach(r => body.appendChild(r));
}
function setupTables() {
  document.querySelectorAll("table.sortable").forEach(table => {
    table.querySelectorAll("thead th").forEach((th, i) => th.addEventListener("click", () => sortTable(table, i, th)));
  });
  document.querySelectorAll("select.family-filter").forEach(sel => {
    const table = document.getElementById(sel.getAttribute("data-table"));
    sel.addEventListener("change", () => {
      Array.from(table.tBodies[0].rows).forEach(r => {
        r.style.display = (!sel.value || r.getAttribute("data-family") === sel.value) ? "" : "none";
      });
    });
  });
}
function drawCharts() {
  document.querySelectorAll("div.chart[data-figure]").forEach(div => {
    const fig = JSON.parse(document.getElementById(div.getAttribute("data-figure")).textContent);
    Plotly.newPlot(div, fig.data, fig.layout, {responsive: true, displaylogo: false});
    div.on("plotly_click", ev => {
      const p = ev.points && ev.points[0];
      if (p && typeof p.customdata === "string" && p.customdata.endsWith(".json")) window.location.href = p.customdata;
    });
  });
}
document.addEventListener("DOMContentLoaded", () => { setupTables(); drawCharts(); });
