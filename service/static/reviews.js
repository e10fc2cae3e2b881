// Review page: filter the rows and select every visible open item. The page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const filter = document.getElementById("filter");
  const all = document.getElementById("select-visible");
  const rows = () => Array.from(document.querySelectorAll("tbody tr[data-text]"));
  const count = () => {
    const confirm = document.getElementById("confirm");
    if (confirm) confirm.placeholder = String(document.querySelectorAll('input[name="select"]:checked').length);
  };
  if (filter) filter.addEventListener("input", () => {
    const q = filter.value.trim().toLowerCase();
    rows().forEach((tr) => { tr.hidden = q !== "" && !tr.dataset.text.includes(q); });
  });
  if (all) all.addEventListener("change", () => {
    rows().forEach((tr) => {
      const box = tr.querySelector('input[name="select"]');
      if (box && !tr.hidden) box.checked = all.checked;
    });
    count();
  });
  document.addEventListener("change", (e) => { if (e.target.name === "select") count(); });
});
