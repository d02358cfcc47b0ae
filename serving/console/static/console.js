// Nightdesk agent console: lists recent predictions to review and posts corrections.
// Vanilla JS, no dependencies. Data is inserted with textContent only (never as HTML).
"use strict";

const KEY_STORAGE = "nightdesk.apiKey";
const AGENT_STORAGE = "nightdesk.agentId";
const LIMIT = 100;
let latestLoad = 0; // answers of superseded loads are dropped, so the list always matches the filters

const $ = (id) => document.getElementById(id);

function headers() {
  const result = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) result.Authorization = `Bearer ${key}`;
  return result;
}

// The reason of an error answer: FastAPI's {"detail": "..."} or {"detail": [{"loc", "msg"}]}.
async function reason(response) {
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  const detail = body && body.detail;
  if (typeof detail === "string") return `${response.status}: ${detail}`;
  if (Array.isArray(detail)) {
    return `${response.status}: ` + detail.map((e) => `${(e.loc || []).slice(1).join(".")} ${e.msg}`).join("; ");
  }
  return `${response.status} ${response.statusText}`;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function cell(child) {
  const td = element("td");
  td.append(child);
  return td;
}

function percent(value) {
  return `${Math.round(value * 100)}%`;
}

function query() {
  const params = new URLSearchParams({ task: $("task").value, limit: String(LIMIT) });
  const queue = $("queue").value.trim();
  if (queue) params.set("queue", queue);
  if ($("only-review").checked) {
    params.set("only_review", "true");
    const limit = parseFloat($("max-confidence").value);
    if (!Number.isNaN(limit)) params.set("max_confidence", String(Math.min(1, Math.max(0, limit))));
  }
  return params;
}

async function load() {
  const mine = ++latestLoad;
  const task = $("task").value;
  setStatus("Loading…");
  let response;
  try {
    response = await fetch(`console/api/predictions?${query()}`, { headers: headers() });
  } catch (error) {
    if (mine === latestLoad) setStatus(`The service cannot be reached: ${error.message}`, true);
    return;
  }
  if (!response.ok) {
    const why = await reason(response);
    if (mine === latestLoad) setStatus(`Could not load predictions (${why})`, true);
    return;
  }
  const predictions = (await response.json()).predictions.filter((p) => p.outcomes[task]);
  if (mine !== latestLoad) return;
  const body = $("predictions").tBodies[0];
  body.replaceChildren(...predictions.map((p) => row(p, task)));
  rememberQueues(predictions);
  setStatus(predictions.length ? `${predictions.length} predictions to look at (${task})`
                               : `Nothing to review (${task}).`);
}

function rememberQueues(predictions) {
  const known = new Set([...$("queues").options].map((o) => o.value));
  for (const p of predictions) {
    if (p.queue && !known.has(p.queue)) {
      known.add(p.queue);
      $("queues").append(new Option(p.queue, p.queue));
    }
  }
}

function row(prediction, task) {
  const outcome = prediction.outcomes[task];
  const tr = element("tr");
  tr.dataset.predictionId = prediction.prediction_id;
  tr.dataset.ticketId = prediction.ticket_id;

  tr.append(element("td", new Date(prediction.created_at).toLocaleString(), "time"));
  tr.append(element("td", prediction.ticket_id, "ticket"));
  const text = element("td", null, "text");
  text.append(element("strong", prediction.subject || "(no subject)"));
  const bodyText = prediction.body || "";
  text.append(element("span", bodyText.length > 240 ? `${bodyText.slice(0, 240)}…` : bodyText));
  tr.append(text);
  tr.append(element("td", prediction.queue || "–", "queue"));

  const said = element("td", null, "predicted");
  said.append(element("span", outcome.label, "label"), " ",
              element("span", percent(outcome.confidence), "confidence"));
  if (outcome.needs_review) said.append(" ", element("span", "review", "review"));
  tr.append(said);

  // Every label the model knows, most likely first; choosing one sends the correction.
  const choice = element("select", null, "correction");
  choice.setAttribute("aria-label", `correct ${task} of ticket ${prediction.ticket_id}`);
  const labels = Object.entries(outcome.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [label, probability] of labels) {
    const option = new Option(`${label} (${percent(probability)})`, label);
    option.selected = label === outcome.label;
    choice.append(option);
  }
  choice.addEventListener("change", () => send(tr, prediction, task, choice.value, false));
  tr.append(cell(choice));

  const misrouted = element("button", "Misrouted", "misrouted");
  misrouted.type = "button";
  misrouted.title = "The ticket went to the wrong queue (sends the label chosen on the left)";
  misrouted.addEventListener("click", () => send(tr, prediction, task, choice.value, true));
  tr.append(cell(misrouted));

  tr.append(element("td", "", "saved"));
  return tr;
}

async function send(tr, prediction, task, label, misrouted) {
  const saved = tr.querySelector("td.saved");
  const agentId = $("agent-id").value.trim();
  if (!agentId) {
    saved.textContent = "enter your agent id first";
    tr.className = "failed";
    $("agent-id").focus();
    return;
  }
  saved.textContent = "saving…";
  const correction = { prediction_id: prediction.prediction_id, task, label, agent_id: agentId, misrouted };
  let response;
  try {
    response = await fetch("feedback", { method: "POST", headers: headers(), body: JSON.stringify(correction) });
  } catch (error) {
    saved.textContent = `not saved: ${error.message}`;
    tr.className = "failed";
    return;
  }
  if (!response.ok) {
    saved.textContent = `not saved (${await reason(response)})`;
    tr.className = "failed";
    return;
  }
  const [result] = (await response.json()).corrections;
  saved.textContent = `${misrouted ? "misrouted, " : ""}${result.label} (${result.status})`;
  tr.className = "corrected";
}

function remember(input, storageKey) {
  input.value = localStorage.getItem(storageKey) || "";
  input.addEventListener("change", () => localStorage.setItem(storageKey, input.value.trim()));
}

document.addEventListener("DOMContentLoaded", () => {
  remember($("api-key"), KEY_STORAGE);
  remember($("agent-id"), AGENT_STORAGE);
  $("identity").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  for (const id of ["task", "only-review", "max-confidence"]) $(id).addEventListener("change", load);
  $("queue").addEventListener("change", load);
  $("api-key").addEventListener("change", load);
  load();
});
