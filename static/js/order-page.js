// The back office's order page: each action button asks before it posts (its data-confirm
// text). Without JavaScript the buttons post straight away; the server checks the state anyway.
"use strict";
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const question = button && button.dataset ? button.dataset.confirm : "";
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
