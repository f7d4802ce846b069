// "Copy" buttons (data-copy="text to copy"), e.g. a provider account's webhook URL.
"use strict";
document.addEventListener("click", function (event) {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  event.preventDefault();
  const text = button.dataset.copy;
  const done = function () {
    button.classList.add("is-copied");
    window.setTimeout(function () { button.classList.remove("is-copied"); }, 2000);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, function () { fallback(text); done(); });
  } else {
    fallback(text);
    done();
  }

  function fallback(value) {
    const area = document.createElement("textarea");
    area.value = value;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (error) { /* nothing more to try: the URL stays selectable */ }
    area.remove();
  }
});
