// natsplice broker dashboard: reads /api/v1/{agents,services,relays,sessions}
// every REFRESH_MS and fills the tables. Read-only; no external assets.
//
// The API may want a bearer token (http tokens in broker.yaml): the page
// takes it from the address's fragment (/#token=T, never sent to a server,
// removed from the address bar at once) or from the form, keeps it in
// sessionStorage (this tab only) and sends it as "Authorization: Bearer T".
"use strict";

const REFRESH_MS = 3000;
const TOKEN_KEY = "natsplice-token";
const API = ["agents", "services", "relays", "sessions"];

const $ = (id) => document.getElementById(id);

function token() {
	return sessionStorage.getItem(TOKEN_KEY) || "";
}

function takeFragmentToken() {
	const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);

	if (!m)
		return;
	sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
	history.replaceState(null, "", location.pathname + location.search);
}

class HttpError extends Error {
	constructor(status, what) {
		super(what + ": HTTP " + status);
		this.status = status;
	}
}

async function get(name) {
	const headers = { "Accept": "application/json" };
	const t = token();

	if (t)
		headers["Authorization"] = "Bearer " + t;
	const r = await fetch("/api/v1/" + name, { headers, cache: "no-store" });
	if (!r.ok)
		throw new HttpError(r.status, "/api/v1/" + name);
	return r.json();
}

// ---- formatting

function bytes(n) {
	const units = ["B", "KiB", "MiB", "GiB", "TiB"];
	let i = 0;

	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function age(iso) {
	let s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
	const parts = [];

	for (const [unit, len] of [["d", 86400], ["h", 3600], ["m", 60]]) {
		if (s >= len || parts.length) {
			parts.push(Math.floor(s / len) + unit);
			s %= len;
		}
	}
	parts.push(s + "s");
	return parts.slice(0, 2).join(" ") + " ago";
}

// ---- DOM: text only (textContent), never markup from the API

function cell(tr, key, text, opts = {}) {
	const td = document.createElement("td");

	td.className = "c-" + key + (opts.cls ? " " + opts.cls : "");
	td.textContent = text === null || text === undefined ? "-" : String(text);
	if (opts.title)
		td.title = opts.title;
	if (opts.data)
		for (const [k, v] of Object.entries(opts.data))
			td.dataset[k] = v;
	tr.appendChild(td);
	return td;
}

function yesno(tr, key, v) {
	cell(tr, key, v ? "yes" : "no", { cls: v ? "yes" : "no" });
}

function fill(id, rows, render, empty) {
	const body = $(id).tBodies[0];
	const trs = rows.map((r) => {
		const tr = document.createElement("tr");

		render(tr, r);
		return tr;
	});

	if (!trs.length) {
		const tr = document.createElement("tr");
		const td = cell(tr, "none", empty, { cls: "empty" });

		td.colSpan = $(id).tHead.rows[0].cells.length;
		trs.push(tr);
	}
	body.replaceChildren(...trs);
}

function render(d) {
	const open = d.sessions.filter((s) => s.state !== "closed" &&
		s.state !== "failed" && s.state !== "retried");
	const relayed = d.sessions.reduce((sum, s) => sum + (s.bytes || 0), 0);
	const perService = {};
	const perRelay = {};
	let maxLoad = 0;

	for (const s of d.sessions) {
		perService[s.service] = (perService[s.service] || 0) + 1;
		if (s.relay)
			perRelay[s.relay] = (perRelay[s.relay] || 0) + 1;
	}
	for (const r of d.relays)
		maxLoad = Math.max(maxLoad, r.active_splices);

	$("n-agents").textContent = d.agents.length;
	$("n-services").textContent = d.services.length;
	$("n-sessions").textContent = d.sessions.length;
	$("n-open").textContent = open.length;
	$("n-relays").textContent = d.relays.length;
	$("n-bytes").textContent = bytes(relayed);

	fill("agents", d.agents, (tr, a) => {
		tr.dataset.name = a.name;
		cell(tr, "name", a.name);
		cell(tr, "address", a.observed_address);
		cell(tr, "local", a.local_address);
		cell(tr, "listen_port", a.listen_port, { cls: "num" });
		yesno(tr, "reachable", a.reachable);
		cell(tr, "services", a.services.join(", ") || "-");
		cell(tr, "connected", age(a.connected_since), { title: a.connected_since });
	}, "no agent is logged in");

	fill("services", d.services, (tr, s) => {
		tr.dataset.name = s.service;
		cell(tr, "service", s.service);
		cell(tr, "proto", s.proto);
		yesno(tr, "encrypt", s.encrypt);
		yesno(tr, "compress", s.compress);
		cell(tr, "sessions", perService[s.service] || 0, { cls: "num" });
	}, "no service is published");

	fill("relays", d.relays, (tr, r) => {
		const bar = document.createElement("span");

		tr.dataset.name = r.name;
		cell(tr, "name", r.name);
		cell(tr, "address", r.relay_address, { title: "control from " + r.observed_address });
		cell(tr, "splices", r.active_splices, { cls: "num" });
		cell(tr, "pending", r.pending_requests, { cls: "num" });
		cell(tr, "ports", r.ports_in_use, { cls: "num" });
		bar.className = "bar";
		bar.style.width = (maxLoad ? 8 * r.active_splices / maxLoad : 0) + "em";
		cell(tr, "load", "", { title: (perRelay[r.name] || 0) + " sessions recorded" })
			.appendChild(bar);
		cell(tr, "connected", age(r.connected_since), { title: r.connected_since });
	}, "no relay is logged in");

	fill("sessions", d.sessions.slice().reverse(), (tr, s) => {
		const via = s.relay ? s.relay + (s.mode ? " (" + s.mode + ")" : "") : null;

		tr.dataset.id = s.id;
		if (s.parent)
			tr.className = "flow";
		cell(tr, "id", s.parent ? "flow :" + s.port : s.id.slice(0, 8),
		     { title: s.parent ? s.id + " of " + s.parent : s.id });
		cell(tr, "service", s.service);
		cell(tr, "subscriber", s.kind === "public" ? "public " + s.client : s.subscriber,
		     { title: s.kind === "public" ? "a public port's client (no agent)" : "" });
		cell(tr, "path", s.path);
		cell(tr, "via", via);
		cell(tr, "transport", s.transport + (s.alg ? " + " + s.alg : ""));
		yesno(tr, "encrypted", s.encrypted);
		cell(tr, "state", s.state, { cls: "state-" + s.state, title: s.reason || "" });
		cell(tr, "bytes", bytes(s.bytes), {
			cls: "num", data: { bytes: s.bytes },
			title: s.bytes_ab + " B to the provider, " + s.bytes_ba +
			       " B back, " + s.packets + " packets (relayed sessions, when they end)",
		});
		cell(tr, "setup", s.setup_ms === null ? null : s.setup_ms + " ms", { cls: "num" });
		cell(tr, "started", age(s.started), { title: s.started });
	}, "no session yet");
}

function status(state, text) {
	document.body.dataset.state = state;
	$("status").textContent = text;
}

async function refresh() {
	try {
		const all = await Promise.all(API.map(get));
		const d = {};

		API.forEach((name, i) => { d[name] = all[i]; });
		render(d);
		status("ok", "updated " + new Date().toLocaleTimeString());
	} catch (e) {
		if (e.status === 401 || e.status === 403) {
			$("token-form").hidden = false;
			status("error", (token() ? "the broker refused the token" :
				"the broker wants an API token") + " (HTTP " + e.status + ")");
		} else {
			status("error", "cannot read the broker's API: " + e.message);
		}
	}
	setTimeout(refresh, REFRESH_MS);
}

function setup() {
	takeFragmentToken();
	$("token-show").addEventListener("click", () => {
		$("token-form").hidden = !$("token-form").hidden;
	});
	$("token-form").addEventListener("submit", (ev) => {
		ev.preventDefault();
		sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
		$("token").value = "";
		$("token-form").hidden = true;
	});
	$("token-forget").addEventListener("click", () => sessionStorage.removeItem(TOKEN_KEY));
	refresh();
}

setup();
