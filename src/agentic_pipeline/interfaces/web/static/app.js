// agentic-pipeline dashboard: keyboard shortcuts (no inline script: the CSP forbids it).
// On a review page: a = approve, r = focus the rejection reason, n or j = next book, e = edit metadata.
(function () {
  "use strict";
  function typing(target) {
    var tag = (target && target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var shortcut = document.querySelector('[data-key="' + event.key + '"]');
    if (!shortcut) { return; }
    event.preventDefault();
    if (shortcut.tagName === "INPUT" || shortcut.tagName === "TEXTAREA") { shortcut.focus(); }
    else { shortcut.click(); }
  });
  // a typed confirmation must match before the confirm button is enabled
  document.addEventListener("input", function (event) {
    var box = event.target;
    if (!box.dataset || !box.dataset.mustEqual) { return; }
    var button = document.getElementById(box.dataset.enables);
    if (button) { button.disabled = box.value.trim() !== box.dataset.mustEqual; }
  });
}());
