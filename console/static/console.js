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

// The on-call board: dropping a shift block on another person's row submits the block's own
// "Hand to" form (the keyboard way) with that person chosen, so both take the same server path.
function boardDragAndDrop(board) {
  let dragged = null;
  const laneOf = (event) => event.target.closest && event.target.closest("tr[data-lane]");
  const accepts = (lane) => dragged && lane && lane.dataset.lane !== dragged.dataset.user &&
    [...dragged.querySelector("form.handover").elements.user.options].some((o) => o.value === lane.dataset.lane);
  const clear = () => board.querySelectorAll(".drop-target").forEach((row) => row.classList.remove("drop-target"));
  board.addEventListener("dragstart", (event) => {
    const shift = event.target.closest && event.target.closest(".shift[draggable]");
    if (!shift) return;
    dragged = shift;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", shift.dataset.testid || "shift");
    shift.classList.add("dragging");
  });
  board.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    clear();
  });
  board.addEventListener("dragover", (event) => {
    const lane = laneOf(event);
    if (!accepts(lane)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    if (!lane.classList.contains("drop-target")) { clear(); lane.classList.add("drop-target"); }
  });
  board.addEventListener("drop", (event) => {
    const lane = laneOf(event);
    if (!accepts(lane)) return;
    event.preventDefault();
    const form = dragged.querySelector("form.handover");
    form.elements.user.value = lane.dataset.lane;
    if (!form.elements.reason.value) form.elements.reason.value = "moved on the on-call board";
    board.dataset.submitting = "yes";
    form.requestSubmit();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const region = document.getElementById("live");
  if (region && region.dataset.events && "EventSource" in window) watchIncident(region);
  const board = document.querySelector("table.board.editable");
  if (board) boardDragAndDrop(board);
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});
