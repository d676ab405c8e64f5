// The callsign console's only script (served from /console/assets, as the
// Content-Security-Policy requires): copy buttons, revealing masked keys, and showing times in
// the browser's time zone. Every page works without it; it only adds these conveniences.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Times: the server writes UTC; show the local time with its zone, keeping UTC as the title.
  for (const el of document.querySelectorAll("time[datetime]")) {
    const when = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) continue;
    el.title = el.textContent;
    el.textContent = when.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
    });
  }

  // Reveal: a masked field becomes readable (and masked again).
  for (const button of document.querySelectorAll("button[data-reveal]")) {
    const field = document.getElementById(button.dataset.reveal);
    if (!field) continue;
    button.hidden = false;
    button.addEventListener("click", () => {
      const show = field.type === "password";
      field.type = show ? "text" : "password";
      button.textContent = show ? "Hide" : "Reveal";
      button.setAttribute("aria-pressed", String(show));
    });
  }

  // Copy: the value of the named field (or the text of the named element) to the clipboard.
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const source = document.getElementById(button.dataset.copy);
    if (!source) continue;
    button.hidden = false;
    const label = button.textContent;
    button.addEventListener("click", async () => {
      const text = "value" in source ? source.value : source.textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        // No clipboard (an http page on another host): select it for Ctrl+C instead.
        if (source.select) source.select();
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  }
});
