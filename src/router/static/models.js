// The model list's search, filters and sortable columns. The page works without it (all rows
// shown, server order); this only hides rows and reorders them. No network, no storage.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("filters");
  const body = document.querySelector("#models tbody");
  const rows = Array.from(body.rows);
  const q = document.getElementById("q");
  const type = document.getElementById("type");
  const provider = document.getElementById("provider");
  const ready = document.getElementById("ready");
  const count = document.getElementById("count");
  const params = new URLSearchParams(location.search);
  q.value = params.get("q") || "";
  type.value = params.get("type") || "";
  provider.value = params.get("provider") || "";
  ready.checked = params.get("ready") === "1";

  function apply() {
    const words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of rows) {
      const text = Array.from(row.cells, (cell) => cell.textContent).join(" ").toLowerCase();
      const ok = words.every((w) => text.includes(w))
        && (!type.value || row.dataset.type === type.value)
        && (!provider.value || row.dataset.provider === provider.value)
        && (!ready.checked || row.dataset.configured === "yes");
      row.hidden = !ok;
      shown += ok ? 1 : 0;
    }
    count.textContent = `${shown} of ${rows.length}`;
  }

  function key(row, column) {
    const cell = row.cells[column];
    const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
    const number = Number(raw);
    return raw !== "" && !Number.isNaN(number) ? number : raw.toLowerCase();
  }

  function sortBy(th, column) {
    const descending = th.getAttribute("aria-sort") === "ascending";
    for (const other of th.parentNode.cells) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    const sign = descending ? -1 : 1;
    const sorted = rows.slice().sort((a, b) => {
      const x = key(a, column), y = key(b, column);
      if (x === y) return 0;
      if (x === "") return 1;  // unknown values last, either way
      if (y === "") return -1;
      return (x < y ? -1 : 1) * sign;
    });
    for (const row of sorted) body.appendChild(row);
  }

  document.querySelectorAll("#models thead th").forEach((th, column) => {
    th.querySelector("button").addEventListener("click", () => sortBy(th, column));
  });
  for (const input of [q, type, provider, ready]) input.addEventListener("input", apply);
  form.addEventListener("submit", (event) => event.preventDefault());
  form.hidden = false;
  apply();
  // ?sort=Provider&desc=1: a sorted view can be linked to (and is how the tests sort)
  const headers = Array.from(document.querySelectorAll("#models thead th"));
  const wanted = headers.findIndex((th) => th.textContent.trim() === params.get("sort"));
  if (wanted >= 0) {
    sortBy(headers[wanted], wanted);
    if (params.get("desc") === "1") sortBy(headers[wanted], wanted);
  }
});
