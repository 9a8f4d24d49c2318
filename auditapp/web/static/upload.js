// Upload forms (class "upload-form"): drag and drop onto the drop zone, a progress bar,
// and a clear message on error. Without JavaScript the form posts normally.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form.upload-form").forEach(function (form) {
    var zone = form.querySelector(".dropzone");
    var input = form.querySelector("input[type=file]");
    var bar = form.querySelector(".upload-progress");
    var status = form.querySelector(".upload-status");
    if (zone && input) {
      ["dragenter", "dragover"].forEach(function (name) {
        zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
      });
      ["dragleave", "drop"].forEach(function (name) {
        zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
      });
      zone.addEventListener("drop", function (e) {
        e.preventDefault();
        if (e.dataTransfer && e.dataTransfer.files.length) {
          input.files = e.dataTransfer.files;
          status.textContent = input.files[0].name;
        }
      });
    }
    form.addEventListener("submit", function (e) {
      if (!window.XMLHttpRequest || !window.FormData) { return; }
      e.preventDefault();
      var button = form.querySelector("button[type=submit]");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (ev) {
        if (ev.lengthComputable) {
          bar.hidden = false;
          bar.value = Math.round((ev.loaded / ev.total) * 100);
          status.textContent = bar.value + "%";
        }
      });
      xhr.addEventListener("load", function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
        if (xhr.status === 201) {
          window.location.href = body.back && body.back !== "/" ? body.back : body.url;
          return;
        }
        button.disabled = false;
        bar.hidden = true;
        var messages = body.errors ? Object.values(body.errors) : [];
        status.textContent = messages.length ? messages.join(" ") : (body.error || ("HTTP " + xhr.status));
        status.classList.add("field-error");
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        status.textContent = form.dataset.networkError || "Network error";
        status.classList.add("field-error");
      });
      button.disabled = true;
      status.classList.remove("field-error");
      xhr.send(new FormData(form));
    });
  });
});
