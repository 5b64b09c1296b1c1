// The shipping batch page: polls the batch's small JSON endpoint (data-progress-url) once a
// second, moves the progress bar and the counts, and reloads the page when the batch is done
// (its per-order results and the label and picking-list downloads are on the page then).
"use strict";
(() => {
  const box = document.querySelector(".lc-batch[data-progress-url]");
  if (!box || box.dataset.finished === "1") return;
  const bar = box.querySelector("progress");
  const field = (name) => box.querySelector(`[data-field="${name}"]`);
  const show = (state) => {
    bar.value = state.percent;
    bar.textContent = `${state.percent}%`;
    for (const name of ["status_label", "done", "total", "shipped", "failed"]) field(name).textContent = state[name];
    box.dataset.status = state.status;
  };
  const poll = async () => {
    try {
      const response = await fetch(box.dataset.progressUrl, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) {
        const state = await response.json();
        show(state);
        if (state.finished) {
          window.location.reload();
          return;
        }
      }
    } catch (err) {
      // a dropped request: try again at the next tick
    }
    window.setTimeout(poll, 1000);
  };
  poll();
})();
