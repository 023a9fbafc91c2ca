// The jobpoll web console: pages over this server's JSON API (/api/...), routed by the URL's hash.
"use strict";

const EXECUTION_DONE = ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
const JOB_DONE = ["COMPLETE", "FAILED", "CANCELED"];
const JOB_STATUSES = ["QUEUED", "PENDING", "RUNNING", "COMPLETE", "FAILED", "CANCELED"];
const POLL_MS = 500;
const MAX_POLL_MS = 8000;
const main = document.getElementById("main");
let stack = { seed_input: { delay: 20 }, local: true, served_by: null };
let generation = 0; // a new page ends the previous page's live updates

class Problem extends Error {
  constructor(problem) {
    super(problem.title);
    this.problem = problem;
  }
}

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function api(method, path, body, etag) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (etag) headers["If-None-Match"] = etag;
  let response;
  try {
    response = await fetch(path, {
      method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    // Nothing answers: `local up` (which serves this console) or `jobpoll console` has stopped.
    const start = stack.served_by || "jobpoll local up";
    throw new Problem({ title: "the stack is not running", detail: `start it with: ${start}` });
  }
  if (response.status === 304) return { unchanged: true, etag };
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new Problem(data && data.title ? data : { title: `HTTP ${response.status}`, status: response.status });
  }
  return { data, etag: response.headers.get("ETag") };
}

function problemBox(error) {
  const problem = error instanceof Problem ? error.problem : { title: "error", detail: String(error) };
  const detail = problem.detail || "";
  const command = detail.match(/^(.*?:) (jobpoll .*)$/);
  return h("div", { class: "problem", role: "alert" },
    h("strong", {}, problem.title), problem.status ? ` (HTTP ${problem.status})` : "",
    detail ? h("p", {}, command ? [command[1] + " ", h("code", {}, command[2])] : detail) : null);
}

function show(...nodes) {
  main.replaceChildren(...nodes.flat(2).filter((node) => node !== null && node !== undefined));
}

function fail(error) {
  show(h("h1", {}, "Something went wrong"), problemBox(error));
}

function status(value) {
  return h("span", { class: `status ${value}` }, value);
}

function when(value) {
  if (!value) return "–";
  return value.replace("T", " ").replace(/\.\d+/, "").replace(/(\+00:00|Z)$/, " UTC");
}

function pretty(value) {
  return h("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

function statusFilter(route, current, statuses) {
  return h("div", { class: "toolbar" }, h("span", {}, "Status:"),
    [["", "all"], ...statuses.map((s) => [s, s])].map(([value, text]) =>
      value === (current || "") ? h("strong", { "aria-current": "true" }, text)
        : h("a", { href: value ? `#/${route}?status=${value}` : `#/${route}` }, text)));
}

// Live updates: look again while `running(data)`, with If-None-Match; back off while nothing changes.
function live(path, draw, running) {
  const mine = generation;
  let etag = null;
  let delay = POLL_MS;
  let last = null;
  const note = h("p", { class: "live", "aria-live": "polite" });
  async function tick() {
    if (mine !== generation) return;
    try {
      const answer = await api("GET", path, undefined, etag);
      if (mine !== generation) return;
      if (answer.unchanged) {
        delay = Math.min(delay * 2, MAX_POLL_MS);
      } else {
        etag = answer.etag;
        last = answer.data;
        delay = POLL_MS;
        draw(last, note);
      }
    } catch (error) {
      if (mine === generation) fail(error);
      return;
    }
    if (running(last)) {
      note.textContent = "updating live";
      setTimeout(tick, delay);
    } else {
      note.textContent = "";
      note.dataset.done = "true";
    }
  }
  tick();
}

function executionsPage(query) {
  const page = Number(query.get("page") || 0);
  const filter = query.get("status") || "";
  const params = new URLSearchParams({ page });
  if (filter) params.set("status", filter);
  live(`/api/executions?${params}`, (data, note) => {
    const link = (p) => `#/executions?${new URLSearchParams(filter ? { status: filter, page: p } : { page: p })}`;
    show(h("h1", { tabindex: "-1" }, "Executions"), statusFilter("executions", filter, data.statuses), note,
      data.executions.length === 0 ? h("p", { class: "muted" }, "No executions.") : h("div", { class: "scroll" },
        h("table", {}, h("thead", {}, h("tr", {}, ["Name", "Status", "Started", "Stopped"].map((t) => h("th", {}, t)))),
          h("tbody", {}, data.executions.map((e) => h("tr", {},
            h("td", {}, h("a", { href: `#/executions/${encodeURIComponent(e.name)}` }, e.name)),
            h("td", {}, status(e.status)), h("td", {}, when(e.startDate)), h("td", {}, when(e.stopDate))))))),
      h("div", { class: "toolbar" },
        page > 0 ? h("a", { href: link(page - 1), rel: "prev" }, "← Newer") : null,
        data.more ? h("a", { href: link(page + 1), rel: "next" }, "Older →") : null));
  }, (data) => data.executions.some((e) => e.status === "RUNNING"));
}

function executionPage(name) {
  live(`/api/executions/${encodeURIComponent(name)}`, (data, note) => {
    const e = data.execution;
    const stop = h("button", { class: "danger", type: "button", onclick: async () => {
      stop.disabled = true;
      try { await api("POST", `/api/executions/${encodeURIComponent(name)}/stop`); route(); } catch (error) { fail(error); }
    } }, "Stop execution");
    const graph = h("div", { class: "graph-box" });
    graph.innerHTML = data.graph; // drawn by the server from the ASL, every text escaped
    show(h("h1", { tabindex: "-1" }, `Execution ${e.name}`),
      h("div", { class: "toolbar" }, status(e.status), e.status === "RUNNING" ? stop : null,
        data.job_id ? h("a", { href: `#/jobs/${encodeURIComponent(data.job_id)}` }, `Job ${data.job_id}`) : null,
        data.continued_in ? h("a", { href: `#/executions/${encodeURIComponent(data.continued_in)}`, class: "continued" },
          `Continued in ${data.continued_in} →`) : null),
      note,
      h("dl", {}, h("dt", {}, "Started"), h("dd", {}, when(e.startDate)), h("dt", {}, "Stopped"), h("dd", {}, when(e.stopDate)),
        e.error ? [h("dt", {}, "Error"), h("dd", {}, `${e.error}: ${e.cause || ""}`)] : null),
      h("h2", {}, "State graph"), graph,
      h("h2", {}, "Input"), pretty(e.input),
      e.output !== undefined ? [h("h2", {}, "Output"), pretty(e.output)] : null,
      h("h2", {}, `History (${data.events.length} events)`),
      h("div", { class: "scroll" }, h("table", { class: "history" },
        h("thead", {}, h("tr", {}, ["#", "Time", "Event", "State", "Details"].map((t) => h("th", {}, t)))),
        h("tbody", {}, data.events.map((ev) => h("tr", { "data-type": ev.type },
          h("td", {}, ev.id), h("td", {}, when(ev.timestamp)), h("td", {}, ev.type), h("td", {}, ev.state || ""),
          h("td", {}, ["input", "output", "error", "cause"].filter((k) => ev[k] !== undefined).map((k) =>
            h("details", {}, h("summary", {}, k), pretty(ev[k]))))))))));
  }, (data) => data.execution.status === "RUNNING");
}

function jsonForm({ title, intro, fields, text, submitLabel, send }) {
  const area = h("textarea", { id: "input", name: "input", spellcheck: "false", "aria-describedby": "input-error" });
  area.value = text;
  const error = h("div", { id: "input-error", role: "alert" });
  const button = h("button", { type: "submit" }, submitLabel);
  const form = h("form", { onsubmit: async (event) => {
    event.preventDefault();
    error.replaceChildren();
    let value;
    try {
      value = JSON.parse(area.value);
    } catch (problem) {
      error.replaceChildren(problemBox(new Problem({ title: "the input is not valid JSON", detail: problem.message })));
      area.focus();
      return;
    }
    button.disabled = true;
    try {
      await send(value);
    } catch (problem) {
      error.replaceChildren(problemBox(problem));
      button.disabled = false;
    }
  } }, fields, h("label", { for: "input" }, "Input (JSON)"), area, error, h("p", {}, button));
  show(h("h1", { tabindex: "-1" }, title), h("p", { class: "muted" }, intro), form);
  return area;
}

function startPage() {
  const name = h("input", { id: "name", name: "name", placeholder: "generated when empty", autocomplete: "off" });
  jsonForm({
    title: "Start an execution",
    intro: "Starts the poller state machine directly; the execution's name is the job id.",
    fields: [h("label", { for: "name" }, "Name"), name],
    text: JSON.stringify(stack.seed_input, null, 2),
    submitLabel: "Start",
    send: async (input) => {
      const { data } = await api("POST", "/api/executions", { input, name: name.value.trim() || null });
      location.hash = `#/executions/${encodeURIComponent(data.name)}`;
    },
  });
}

async function submitPage() {
  const { data } = await api("GET", "/api/providers");
  const select = h("select", { id: "provider", name: "provider" },
    data.providers.map((p) => h("option", { value: p.name }, p.name)));
  const describe = h("p", { class: "muted" });
  const area = jsonForm({
    title: "Submit a job",
    intro: "POST /jobs with the provider and its input.",
    fields: [h("label", { for: "provider" }, "Provider"), select, describe],
    text: "",
    submitLabel: "Submit",
    send: async (input) => {
      const answer = await api("POST", "/api/jobs", { provider: select.value, input });
      location.hash = `#/jobs/${encodeURIComponent(answer.data.id)}`;
    },
  });
  const pick = () => {
    const provider = data.providers.find((p) => p.name === select.value) || {};
    describe.textContent = provider.description || "";
    const example = (provider.examples || [])[0];
    area.value = JSON.stringify(example !== undefined ? example : (select.value === "simulated" ? stack.seed_input : {}), null, 2);
  };
  select.addEventListener("change", pick);
  const simulated = data.providers.find((p) => p.name === "simulated");
  if (simulated) select.value = "simulated";
  pick();
}

function jobsPage(query) {
  const filter = query.get("status") || "";
  const params = new URLSearchParams();
  for (const key of ["status", "next"]) if (query.get(key)) params.set(key, query.get(key));
  live(`/api/jobs?${params}`, (data, note) => {
    show(h("h1", { tabindex: "-1" }, "Jobs"), statusFilter("jobs", filter, JOB_STATUSES), note,
      data.jobs.length === 0 ? h("p", { class: "muted" }, "No jobs.") : h("div", { class: "scroll" },
        h("table", {}, h("thead", {}, h("tr", {}, ["Job", "Provider", "Status", "Progress", "Tries", "Created"].map((t) => h("th", {}, t)))),
          h("tbody", {}, data.jobs.map((j) => h("tr", {},
            h("td", {}, h("a", { href: `#/jobs/${encodeURIComponent(j.id)}` }, j.id)), h("td", {}, j.provider),
            h("td", {}, status(j.status)), h("td", {}, j.progress === null ? "–" : `${Math.round(j.progress * 100)}%`),
            h("td", {}, `${j.try_count}/${j.max_tries}`), h("td", {}, when(j.created_at))))))),
      data.next ? h("div", { class: "toolbar" }, h("a", { href: `#/jobs?${new URLSearchParams({ ...(filter ? { status: filter } : {}), next: data.next })}`, rel: "next" }, "Older →")) : null);
  }, (data) => data.jobs.some((j) => !JOB_DONE.includes(j.status)));
}

function jobPage(id) {
  const path = `/api/jobs/${encodeURIComponent(id)}`;
  live(path, async (job, note) => {
    const cancel = h("button", { class: "danger", type: "button", onclick: async () => {
      cancel.disabled = true;
      try { await api("DELETE", path); route(); } catch (error) { fail(error); }
    } }, "Cancel job");
    const progress = job.progress === null ? null : Math.round(job.progress * 100);
    let result = null;
    if (job.result_available) {
      try { result = [h("h2", {}, "Result"), pretty((await api("GET", `${path}/result`)).data)]; } catch (error) { result = problemBox(error); }
    }
    show(h("h1", { tabindex: "-1" }, `Job ${job.id}`),
      h("div", { class: "toolbar" }, h("span", { id: "job-status" }, status(job.status)),
        JOB_DONE.includes(job.status) ? null : cancel,
        job.execution ? h("a", { href: `#/executions/${encodeURIComponent(job.execution)}` }, "Execution →") : null),
      note,
      h("dl", {},
        h("dt", {}, "Provider"), h("dd", {}, job.provider, job.provider_status ? ` (${job.provider_status})` : ""),
        h("dt", {}, "Progress"), h("dd", {}, progress === null ? "–" : [h("progress", { max: "100", value: progress, "aria-label": "progress" }), ` ${progress}%`]),
        h("dt", {}, "Tries"), h("dd", {}, `${job.try_count} of ${job.max_tries}`),
        h("dt", {}, "Next poll"), h("dd", {}, when(job.next_poll_at)),
        h("dt", {}, "Created"), h("dd", {}, when(job.created_at)),
        h("dt", {}, "Updated"), h("dd", {}, when(job.updated_at))),
      job.partial_output ? [h("h2", {}, "Output so far"), h("pre", { class: "partial-output" }, job.partial_output)] : null,
      job.error ? [h("h2", {}, "Error"), pretty(job.error)] : null,
      result,
      h("h2", {}, "Input"), pretty(job.input));
  }, (job) => !JOB_DONE.includes(job.status));
}

function route() {
  generation += 1;
  const [path, search] = (location.hash.slice(1) || "/executions").split("?");
  const query = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const link of document.querySelectorAll("header nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${parts[0]}` && parts.length === 1);
  }
  try {
    if (parts[0] === "executions" && parts.length === 2) executionPage(parts[1]);
    else if (parts[0] === "executions") executionsPage(query);
    else if (parts[0] === "start") startPage();
    else if (parts[0] === "jobs" && parts.length === 2) jobPage(parts[1]);
    else if (parts[0] === "jobs") jobsPage(query);
    else if (parts[0] === "submit") submitPage().catch(fail);
    else show(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/executions" }, "Executions")));
  } catch (error) {
    fail(error);
  }
  main.focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
api("GET", "/api/stack").then(({ data }) => {
  stack = data;
  document.getElementById("stack").textContent = `stack ${data.stack_name}${data.local ? " (local)" : ""}`;
}).catch(() => {}).finally(route);
