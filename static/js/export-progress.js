// The export job page: polls the job's small JSON endpoint (data-progress-url) once a second,
// moves the progress bar and shows the download link when the file is ready (or the error, where
// the page has a place for it; an element with data-show-when="<status>" is shown in that status
// only, e.g. the report exports' "export again"). Used by the order exports (admin) and the report
// exports.
"use strict";
(() => {
  const box = document.querySelector("[data-progress-url]");
  if (!box) return;
  const bar = box.querySelector("progress");
  const field = (name) => box.querySelector(`[data-field="${name}"]`);
  const show = (state) => {
    bar.value = state.percent;
    bar.textContent = `${state.percent}%`;
    field("status_label").textContent = state.status_label;
    field("rows_done").textContent = state.rows_done;
    field("rows_total").textContent = state.rows_total;
    box.dataset.status = state.status;
    if (state.download_url) {
      field("download_url").href = state.download_url;
      field("download_url").parentElement.hidden = false;
    }
    const error = field("error");
    if (error && state.error) {
      error.textContent = state.error;
      error.hidden = false;
    }
    box.querySelectorAll("[data-show-when]").forEach((el) => {
      el.hidden = el.dataset.showWhen !== state.status; // e.g. "export again" once it failed
    });
  };
  const poll = async () => {
    try {
      const response = await fetch(box.dataset.progressUrl, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) {
        const state = await response.json();
        show(state);
        if (state.status === "done" || state.status === "failed") return;
      }
    } catch (err) {
      // a dropped request: try again at the next tick
    }
    window.setTimeout(poll, 1000);
  };
  if (box.dataset.status !== "done" && box.dataset.status !== "failed") poll();
})();
