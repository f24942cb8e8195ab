// tenantguard console: the only script. Live updates of an incident over server-sent events, and
// confirmation of forms that change a tenant. Pages work without it (reload to see changes).
"use strict";

function watchIncident(region) {
  const source = new EventSource(region.dataset.events);
  source.addEventListener("changed", async () => {
    const response = await fetch(region.dataset.fragment, { credentials: "same-origin" });
    if (!response.ok) return;
    region.innerHTML = await response.text();
    region.dataset.updates = String(Number(region.dataset.updates || "0") + 1);
  });
  source.addEventListener("open", () => { region.dataset.live = "on"; });
}

document.addEventListener("DOMContentLoaded", () => {
  const region = document.getElementById("live");
  if (region && region.dataset.events && "EventSource" in window) watchIncident(region);
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});
