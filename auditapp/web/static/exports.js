// The export page (#export-progress): poll the job's status URL while it runs, move the
// progress bar and what a queued export waits for, and show the download link when the
// file is ready. Without JavaScript the page offers a reload link instead.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("export-progress");
  if (!box || !window.fetch) { return; }
  var state = box.dataset.state;
  if (state !== "queued" && state !== "running") { return; }
  var bar = box.querySelector("progress");
  var percent = box.querySelector(".export-percent");
  var failed = box.querySelector(".export-failed");
  var stateCell = document.getElementById("export-state");
  var waiting = box.querySelector(".export-waiting");

  function show(body) {
    if (bar) { bar.value = body.percent; }
    if (percent) { percent.textContent = body.percent + "%"; }
    var label = box.dataset["label" + body.state.charAt(0).toUpperCase() + body.state.slice(1)];
    if (stateCell && label) { stateCell.textContent = label; }
    // What a queued export waits for (plain text from the server, never markup).
    if (waiting) { waiting.textContent = body.waiting || ""; waiting.hidden = !body.waiting; }
  }

  function poll() {
    fetch(box.dataset.statusUrl, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        show(body);
        if (body.state === "done") {
          // Reload for the rows per sheet and any missing-evidence warning.
          window.location.reload();
          return;
        }
        if (body.state === "failed") {
          if (bar) { bar.hidden = true; }
          if (failed) { failed.hidden = false; }
          return;
        }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
});
