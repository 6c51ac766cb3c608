// gpunet console: the page. It talks only to its own backend (the
// console), which reads the chain, builds transactions and relays signed
// requests to providers; the browser wallet (Keplr or Leap) holds the keys
// and signs.

const $ = (id) => document.getElementById(id);
const state = { chain: null, address: "", pubkey: "", wallet: null };

// api calls the backend; a failure throws an Error whose message is the
// backend's sentence and whose kind names the problem.
export async function api(path, body) {
  const init = body === undefined ? { headers: { "X-Gpunet-Console": "1" } }
    : { method: "POST", headers: { "Content-Type": "application/json", "X-Gpunet-Console": "1" }, body: JSON.stringify(body) };
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const err = new Error((data && data.error) || `${res.status} ${res.statusText}`);
    err.kind = (data && data.kind) || "http";
    err.data = data;
    throw err;
  }
  return data;
}

export function notice(message, kind = "error") {
  const n = $("notice");
  n.textContent = message;
  n.className = "notice " + kind;
  n.hidden = !message;
}

// formatAmount writes base units in the display denom, exactly (no float).
export function formatAmount(base, exponent, display) {
  const s = String(base).replace(/^0+(?=\d)/, "");
  const padded = s.padStart(exponent + 1, "0");
  const whole = padded.slice(0, padded.length - exponent);
  const frac = padded.slice(padded.length - exponent).replace(/0+$/, "");
  return `${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}${frac ? "." + frac : ""} ${display}`;
}

const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

function findWallet() {
  return window.keplr || window.leap || null;
}

async function connect() {
  notice("");
  const w = findWallet();
  if (!w) {
    notice("No browser wallet found: install Keplr or Leap, then reload this page.");
    return;
  }
  const c = state.chain;
  $("connect").disabled = true;
  try {
    if (w.experimentalSuggestChain) await w.experimentalSuggestChain(c.suggest_chain);
    await w.enable(c.chain_id);
    const key = await w.getKey(c.chain_id);
    state.wallet = w;
    state.address = key.bech32Address;
    state.pubkey = b64(key.pubKey);
    // A Ledger signs legacy amino JSON only (and shows it readably).
    state.amino = Boolean(key.isNanoLedger) && typeof w.signAmino === "function";
    $("account").textContent = key.name ? `${key.name} · ${short(state.address)}` : short(state.address);
    $("address").textContent = state.address;
    $("welcome").hidden = true;
    $("wallet").hidden = false;
    $("connect").textContent = "Connected";
    await refreshBalance();
    $("new").hidden = false;
    await refreshProvider();
    await refreshProviders();
    await loadTemplates();
    await refreshDeployments();
  } catch (e) {
    $("connect").disabled = false;
    notice(`The wallet did not connect: ${e.message}`);
  }
}

function short(addr) {
  return addr.length > 20 ? addr.slice(0, 12) + "…" + addr.slice(-6) : addr;
}

async function refreshBalance() {
  const c = state.chain;
  try {
    const b = await api(`/api/accounts/${state.address}/balance`);
    $("balance").textContent = formatAmount(b.amount, c.exponent, c.display_denom);
    $("balance-base").textContent = `(${b.amount} ${b.denom})`;
  } catch (e) {
    notice(`Balance unavailable: ${e.message}`);
  }
}

async function refreshDeployments() {
  let list;
  try {
    list = await api(`/api/accounts/${state.address}/deployments`);
  } catch (e) {
    notice(`Deployments unavailable: ${e.message}`);
    return;
  }
  $("deployments").hidden = false;
  showRunway(list);
  const rows = $("deployment-rows");
  rows.replaceChildren();
  $("no-deployments").hidden = list.length > 0;
  for (const d of list) {
    const tr = document.createElement("tr");
    tr.dataset.dseq = d.dseq;
    const leases = d.leases.map((l) => `${l.gseq}/${l.oseq} ${l.state} · ${short(l.provider)} · ${l.price_per_hour}/h`).join("\n") || "—";
    for (const text of [d.dseq, d.state, leases]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    tr.children[1].className = "state-" + d.state;
    const td = document.createElement("td");
    if (d.state === "active") {
      const close = document.createElement("button");
      close.className = "secondary";
      close.textContent = "Close";
      close.dataset.testid = `close-${d.dseq}`;
      close.addEventListener("click", () => closeDeployment(d, close));
      td.append(close);
    }
    for (const l of d.leases) {
      const b = document.createElement("button");
      b.className = "secondary";
      b.textContent = "Open";
      b.dataset.testid = `open-${d.dseq}-${l.gseq}-${l.oseq}`;
      b.addEventListener("click", () => openLease(d, l));
      td.append(b);
    }
    tr.append(td);
    rows.append(tr);
  }
}

// closeDeployment closes a deployment after a second click on its button:
// its leases end and what is left of the deposit comes back.
async function closeDeployment(d, button) {
  if (button.dataset.armed !== "1") {
    button.dataset.armed = "1";
    button.textContent = "Confirm close";
    return;
  }
  button.disabled = true;
  notice("");
  try {
    const res = await sendTx([{ "@type": "/gpunet.market.v1.MsgCloseDeployment", owner: state.address, dseq: d.dseq }], "", (t) => { button.textContent = t; });
    notice(`Deployment ${d.dseq} closed in block ${res.height}; what was left of its deposit is back in your balance.`, "ok");
    if (current && current.dseq === d.dseq) stopLogs();
    await refreshDeployments();
    await refreshBalance();
  } catch (e) {
    button.disabled = false;
    button.textContent = "Close";
    button.dataset.armed = "";
    notice(`Closing deployment ${d.dseq} failed: ${e.message}`);
  }
}

let dashboard = null;

// refreshProvider shows the provider dashboard when the account is a
// registered provider.
async function refreshProvider() {
  const c = state.chain;
  try {
    dashboard = await api(`/api/providers/${state.address}/dashboard`);
  } catch (e) {
    if (e.kind !== "provider") notice(`Provider record unavailable: ${e.message}`);
    return;
  }
  const d = dashboard;
  $("provider").hidden = false;
  $("p-host").textContent = d.host_uri;
  $("p-cert").textContent = d.tls_cert_sha256;
  $("p-gpus").textContent = d.gpus.join(", ") || "none (CPU only)";
  $("p-bond").textContent = d.bond;
  $("p-rel").textContent = `${d.reliability} (uptime ${d.uptime})`;
  $("p-attest").textContent = d.silenced ? "SILENCED: the chain found this provider silent" :
    d.attested_at !== "0" ? `attested at block ${d.attested_at}; silent after block ${d.deadline}` : "no attestation yet";
  $("p-leases").textContent = `${d.active_leases} active`;
  $("p-earn").textContent = `${formatAmount(d.accrued, c.exponent, c.display_denom)} earned, ${formatAmount(d.withdrawn, c.exponent, c.display_denom)} withdrawn`;
}

// withdraw takes what every lease earned so far, in one transaction.
async function withdraw() {
  if (!dashboard || dashboard.payments.length === 0) {
    notice("Nothing to withdraw: no lease is paying this provider.", "ok");
    return;
  }
  $("withdraw").disabled = true;
  const before = (await api(`/api/accounts/${state.address}/balance`)).amount;
  try {
    const msgs = dashboard.payments.slice(0, 32).map((p) => ({
      "@type": "/gpunet.escrow.v1.MsgWithdrawPayment", provider: state.address,
      payment: { account: { owner: p.owner, dseq: p.dseq }, gseq: p.gseq, oseq: p.oseq, provider: state.address },
    }));
    const res = await sendTx(msgs, "", (t) => { $("withdraw-state").textContent = t; });
    const after = (await api(`/api/accounts/${state.address}/balance`)).amount;
    const c = state.chain;
    const gained = BigInt(after) - BigInt(before);
    $("withdraw-state").textContent = gained >= 0n
      ? `withdrew in block ${res.height}: balance up ${formatAmount(gained.toString(), c.exponent, c.display_denom)} after the fee ${res.fee}`
      : `withdrew in block ${res.height}; the fee ${res.fee} was more than the earnings`;
    await refreshBalance();
    await refreshProvider();
  } catch (e) {
    $("withdraw-state").textContent = "";
    notice(`Withdrawal failed: ${e.message}`);
  } finally {
    $("withdraw").disabled = false;
  }
}

// refreshProviders lists the chain's providers; Details asks one for its
// live inventory (free GPUs, prices) through the relay: a public request.
async function refreshProviders() {
  let list;
  try {
    list = await api("/api/providers");
  } catch (e) {
    notice(`Providers unavailable: ${e.message}`);
    return;
  }
  $("providers").hidden = false;
  const rows = $("provider-rows");
  rows.replaceChildren();
  for (const p of list) {
    const tr = document.createElement("tr");
    const gpus = p.gpus.length ? `${p.gpus.join(", ")} (${p.gpu_inventory || "?"})` : "CPU only";
    for (const text of [short(p.owner), gpus, `${p.reliability} · uptime ${p.uptime}`, p.bond]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement("td");
    const b = document.createElement("button");
    b.className = "secondary";
    b.textContent = "Details";
    b.dataset.testid = `provider-${p.owner}`;
    b.addEventListener("click", () => providerDetail(p));
    td.append(b);
    tr.append(td);
    rows.append(tr);
  }
}

async function providerDetail(p) {
  const out = $("provider-detail");
  out.className = "plan";
  out.textContent = `${p.owner}\nhost ${p.host_uri}\ncertificate pinned on chain: ${p.tls_cert_sha256}\nasking the provider…`;
  try {
    const res = await fetch(`/api/providers/${p.owner}/relay/v1/inventory`, { headers: { "X-Gpunet-Console": "1" } });
    const inv = await res.json();
    if (!res.ok) throw new Error(inv.error || res.statusText);
    const prices = inv.prices || {};
    const gpu = Object.entries(prices.gpu || {}).map(([m, v]) => `${m} ${v}/h`).join(", ");
    out.textContent = [
      `${p.owner}`, `host ${p.host_uri}`, `certificate pinned on chain: ${p.tls_cert_sha256}`,
      `GPUs: ${(inv.gpus || []).length} (${inv.source}), ${(inv.free_gpus || []).length} free`,
      `free: ${(inv.free.cpu_millis / 1000).toFixed(1)} cores, ${Math.floor(inv.free.memory_bytes / 2 ** 30)} GiB memory`,
      `prices per hour: GPU ${gpu || "—"}; CPU core ${prices.cpu_core}; memory GiB ${prices.memory_gib}; storage GiB ${prices.storage_gib}`,
    ].join("\n");
  } catch (e) {
    out.className = "plan error";
    out.textContent = `${p.owner}: ${e.message}`;
  }
}

let templates = [];

async function loadTemplates() {
  try {
    templates = await api("/api/templates");
  } catch (e) {
    notice(`Templates unavailable: ${e.message}`);
    return;
  }
  const sel = $("template");
  sel.replaceChildren(new Option("—", ""));
  for (const t of templates) sel.append(new Option(`${t.name}: ${t.title}`, t.name));
}

function pickTemplate() {
  const t = templates.find((x) => x.name === $("template").value);
  if (!t) return;
  $("sdl").value = t.sdl;
  localStorage.setItem("gpunet.sdl", t.sdl);
  plan().catch(() => {});
}

// plan asks the console how the SDL file reads and what it would cost; a
// mistake is shown beside the editor, whose text is never touched.
async function plan() {
  const c = state.chain;
  const out = $("plan");
  out.className = "plan";
  out.textContent = "checking…";
  try {
    const manual = $("accept-mode").value === "manual";
    const p = await api("/api/deploy/plan", { sdl: $("sdl").value, owner: state.address, deposit: parseAmount($("deposit").value, c.exponent), bid_window: manual ? 60 : 0 });
    const lines = p.groups.map((g) => `group ${g.name}: up to ${g.max_price_per_hour}/h\n  ${g.services.join("\n  ")}`);
    lines.push(`at most ${formatAmount(p.max_price_per_hour, c.exponent, c.display_denom)} per hour; the deposit lasts at least ${Number(p.runway_hours).toFixed(1)} hours`);
    for (const w of p.warnings || []) lines.push(`warning: ${w}`);
    out.textContent = lines.join("\n");
    return p;
  } catch (e) {
    out.className = "plan error";
    out.textContent = e.message;
    throw e;
  }
}

function step(text, cls = "") {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls) li.className = cls;
  $("progress").append(li);
  return li;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// manifestFor is the manifest to send provider: the groups it holds a live
// lease of whole, every other one as its name and digest, so a provider
// reads nothing of the groups others run. It joins the server's JSON of
// each group as is: nothing is re-encoded (a number must reach the
// provider digit for digit, or the hash on chain would not match).
function manifestFor(parts, leases, provider) {
  const runs = new Set(leases
    .filter((l) => l.provider === provider && (l.state === "active" || l.state === "pending"))
    .map((l) => Number(l.gseq)));
  const groups = parts.groups.map((g, i) =>
    runs.has(i + 1) ? g : JSON.stringify({ name: parts.names[i], services: null, withheld: parts.digests[i] }));
  return `{"version":${JSON.stringify(parts.version)},"groups":[${groups.join(",")}]}`;
}

// deploy puts the deployment on chain, shows the bids as they come, sends
// the manifest to each winning provider and waits for the workload.
async function deploy() {
  notice("");
  $("progress").replaceChildren();
  $("bid-rows").replaceChildren();
  $("bids").hidden = true;
  $("deploy").disabled = true;
  try {
    const p = await plan();
    const s = step("signing the deployment in your wallet…");
    const res = await sendTx([p.msg], "", (t) => { s.textContent = t; });
    const dseq = eventAttr(res.events, "EventDeploymentCreated", "dseq");
    s.textContent = `deployment ${dseq} created in block ${res.height} (fee ${res.fee})`;
    s.className = "done";
    const manual = $("accept-mode").value === "manual";
    const wait = step(manual ? "waiting for bids: accept one below…" : "waiting for bids…");
    let leases = [];
    $("why").hidden = true;
    for (let i = 0; i < 180 && leases.length === 0; i++) {
      const bids = await showBids(dseq, manual);
      if (bids.length === 0 && i >= 3) await showWhy(dseq);
      const d = await api(`/api/accounts/${state.address}/deployments/${dseq}`);
      if (d.state !== "active") throw new Error(`deployment ${dseq} is ${d.state}`);
      leases = d.leases.filter((l) => l.state === "active" || l.state === "pending");
      if (leases.length === 0) await sleep(1000);
    }
    if (leases.length === 0) throw new Error("no lease after three minutes; see the bids above");
    await showBids(dseq);
    wait.textContent = leases.map((l) => `lease ${l.gseq}/${l.oseq} won by ${l.provider} at ${l.price_per_hour}/h`).join("; ");
    wait.className = "done";
    for (const l of leases) {
      const m = step(`sending the manifest to ${short(l.provider)}…`);
      await providerFetch(l.provider, "PUT", `/v1/deployments/${state.address}/${dseq}/manifest`, manifestFor(p.manifest, leases, l.provider));
      m.textContent = `manifest accepted by ${short(l.provider)}`;
      m.className = "done";
      const run = step("starting…");
      for (let i = 0; ; i++) {
        const st = await (await providerFetch(l.provider, "GET", `/v1/leases/${state.address}/${dseq}/${l.gseq}/${l.oseq}/status`)).json();
        const reps = st.replicas || [];
        if (reps.length > 0 && reps.every((r) => r.state === "running" || r.state === "exited")) {
          run.textContent = `running: ${reps.map((r) => `${r.service}-${r.replica} ${r.state}`).join(", ")}${(st.uris || []).length ? " at " + st.uris.join(" ") : ""}`;
          run.className = "done";
          break;
        }
        if (i > 300) throw new Error("the workload did not start within five minutes");
        run.textContent = `starting (${st.phase || st.state})…`;
        await sleep(1000);
      }
    }
    await refreshDeployments();
    await refreshBalance();
  } catch (e) {
    step(e.message, "bad");
    notice(`The deployment did not complete: ${e.message}`);
  } finally {
    $("deploy").disabled = false;
  }
}

// eventAttr reads an attribute of the first event whose type ends with
// name (typed events quote their values).
function eventAttr(events, name, key) {
  for (const e of events || []) {
    if (!e.type.endsWith(name)) continue;
    for (const a of e.attributes || []) if (a.key === key) return String(a.value).replace(/^"|"$/g, "");
  }
  throw new Error(`the transaction has no ${name} event`);
}

// showWhy says what no provider offers of the orders still without a bid.
async function showWhy(dseq) {
  const why = await api(`/api/accounts/${state.address}/deployments/${dseq}/why`);
  const box = $("why");
  box.hidden = why.length === 0;
  box.textContent = why.map((w) => `No bids yet for ${w.gseq}/${w.oseq}: ${w.reasons.join("; ")}.`).join("\n");
}

async function showBids(dseq, manual = false) {
  const bids = await api(`/api/accounts/${state.address}/deployments/${dseq}/bids`);
  if (bids.length > 0) $("why").hidden = true;
  const rows = $("bid-rows");
  // The auction's bids go once a lease is made: the table keeps the last
  // it showed.
  if (bids.length === 0 && rows.children.length > 0) return bids;
  rows.replaceChildren();
  $("bids").hidden = bids.length === 0;
  for (const b of bids) {
    const tr = document.createElement("tr");
    for (const text of [`${b.gseq}/${b.oseq}`, short(b.provider), (b.gpus || []).join(", ") || "—", `${b.price_per_hour}/h`, b.reliability || "—", b.uptime || "—"]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement("td");
    const key = `${dseq}/${b.gseq}/${b.oseq}/${b.provider}`;
    if (manual && accepting.has(key)) {
      td.textContent = accepting.get(key);
    } else if (manual) {
      const accept = document.createElement("button");
      accept.textContent = "Accept";
      accept.dataset.testid = `accept-${b.gseq}-${b.oseq}-${b.provider}`;
      accept.addEventListener("click", () => acceptBid(dseq, b, key));
      td.append(accept);
    }
    tr.append(td);
    rows.append(tr);
  }
  return bids;
}

// acceptBid takes a bid before the auction ends: the lease starts with
// this provider at this price.
const accepting = new Map(); // bid → what became of the acceptance

async function acceptBid(dseq, b, key) {
  accepting.set(key, "accepting…");
  try {
    await sendTx([{ "@type": "/gpunet.market.v1.MsgAcceptBid", owner: state.address,
      bid: { order: { owner: state.address, dseq, gseq: b.gseq, oseq: b.oseq }, provider: b.provider } }], "", (t) => accepting.set(key, t));
    accepting.set(key, "accepted");
  } catch (e) {
    accepting.delete(key);
    notice(`Accepting the bid failed: ${e.message}`);
  }
}

// Sessions: the wallet signs, once per provider, a grant for a session
// key the page holds (not extractable); the page signs each provider
// request with it (see provider/leaseauth, "Session grants").
const sessions = new Map();
const revokedUntil = new Map(); // provider → the unix second up to which it revoked this owner's grants
const GRANT_HOURS = 8;
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

async function session(provider) {
  const now = Math.floor(Date.now() / 1000);
  const have = sessions.get(provider);
  if (have && have.expires - 60 > now) return have;
  if (!state.wallet.signArbitrary) throw new Error("this wallet cannot sign a session grant (signArbitrary)");
  const key = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const pub = new Uint8Array(await crypto.subtle.exportKey("raw", key.publicKey));
  const expires = now + GRANT_HOURS * 3600;
  const fresh = revokedUntil.get(provider) || 0;
  if (now - 5 <= fresh) throw new Error(`sessions with this provider were revoked; a new one can be opened after ${new Date((fresh - 55) * 1000).toLocaleTimeString()}`);
  // The keys in the order the provider checks them (its canonical JSON).
  const grant = JSON.stringify({ type: "gpunet/session-grant/v1", chain_id: state.chain.chain_id, provider, owner: state.address, session_key: b64(pub), issued: now - 5, expires });
  const sig = await state.wallet.signArbitrary(state.chain.chain_id, state.address, grant);
  const s = { key, pub: b64(pub), expires, header: btoa(JSON.stringify({ grant, pub_key: sig.pub_key.value, signature: sig.signature })) };
  sessions.set(provider, s);
  return s;
}

// signedHeaders are a provider request's signature headers, made with
// the provider's session.
async function signedHeaders(provider, method, path, body) {
  const s = await session(provider);
  const bytes = new TextEncoder().encode(body);
  const hash = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  const ts = String(Math.floor(Date.now() / 1000));
  const nonce = hex(crypto.getRandomValues(new Uint8Array(16)));
  const msg = ["gpunet-provider-request/v2", state.chain.chain_id, provider, method.toUpperCase(), path, hash, ts, nonce].join("\n");
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, s.key.privateKey, new TextEncoder().encode(msg)));
  return {
    "X-Gpunet-Signer": state.address, "X-Gpunet-Pubkey": s.pub, "X-Gpunet-Timestamp": ts, "X-Gpunet-Nonce": nonce,
    "X-Gpunet-Signature": b64(sig), "X-Gpunet-Grant": s.header,
  };
}

// providerFetch sends a signed request to a provider through the
// console's relay (which checks the provider's certificate pin).
export async function providerFetch(provider, method, path, body = "", signal) {
  const headers = await signedHeaders(provider, method, path, body);
  headers["X-Gpunet-Console"] = "1";
  if (body) headers["Content-Type"] = "application/json";
  const res = await fetch(`/api/providers/${provider}/relay${path}`, { method, headers, body: body || undefined, signal });
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { const j = await res.json(); msg = j.error || msg; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}

let current = null;
let shellWS = null;

// splitCommand splits a command line on spaces, keeping "quoted words".
function splitCommand(line) {
  const out = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m;
  while ((m = re.exec(line)) !== null) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

function frame(type, payload) {
  const f = new Uint8Array(5 + payload.length);
  f[0] = type;
  new DataView(f.buffer).setUint32(1, payload.length);
  f.set(payload, 5);
  return f;
}

const MAX_FRAME = 32 * 1024;

function shellSend(type, payload) {
  if (!shellWS || shellWS.readyState !== WebSocket.OPEN) return;
  if (payload.length === 0) { shellWS.send(frame(type, payload)); return; }
  for (let i = 0; i < payload.length; i += MAX_FRAME) shellWS.send(frame(type, payload.subarray(i, i + MAX_FRAME)));
}

// runShell runs a command in the lease's first service through the
// console's bridge to the provider's shell, with input from the page.
async function runShell() {
  if (!current) return;
  notice("");
  const cmd = splitCommand($("shell-cmd").value);
  if (cmd.length === 0) { notice("Type a command first."); return; }
  if (shellWS) shellWS.close();
  $("shell-out").textContent = "";
  $("shell-state").textContent = "connecting…";
  try {
    const base = `/v1/leases/${state.address}/${current.dseq}/${current.gseq}/${current.oseq}`;
    const st = await (await providerFetch(current.provider, "GET", base + "/status")).json();
    const service = (st.replicas && st.replicas[0] && st.replicas[0].service) || "";
    const body = JSON.stringify({ service, replica: 0, cmd, stdin: true });
    const headers = await signedHeaders(current.provider, "POST", base + "/shell", body);
    const ws = new WebSocket(`ws://${location.host}/api/providers/${current.provider}/shell`);
    ws.binaryType = "arraybuffer";
    shellWS = ws;
    ws.onopen = () => ws.send(JSON.stringify({ path: base + "/shell", headers, body }));
    const dec = new TextDecoder();
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        const m = JSON.parse(ev.data);
        if (m.error) { $("shell-state").textContent = ""; notice(`Shell: ${m.error}`); }
        else if (m.open) $("shell-state").textContent = `running ${cmd[0]} in ${service}-0`;
        return;
      }
      const b = new Uint8Array(ev.data);
      const type = String.fromCharCode(b[0]);
      const payload = b.subarray(5);
      if (type === "o" || type === "x") $("shell-out").textContent += dec.decode(payload, { stream: true });
      else if (type === "c") $("shell-state").textContent = `exit ${new DataView(payload.buffer, payload.byteOffset, 4).getInt32(0)}`;
      else if (type === "E") notice(`Shell: ${dec.decode(payload)}`);
    };
    ws.onclose = () => { if (shellWS === ws) shellWS = null; };
  } catch (e) {
    $("shell-state").textContent = "";
    notice(`Shell: ${e.message}`);
  }
}

function showEscrow(d) {
  const c = state.chain;
  let text = d.escrow_balance
    ? `${formatAmount(d.escrow_balance, c.exponent, c.display_denom)} left of ${formatAmount(d.escrow_deposited, c.exponent, c.display_denom)} deposited`
    : "closed";
  if (d.depletes_at) text += `; runs out ${new Date(d.depletes_at).toLocaleString()} (in ${hoursLeft(d).toFixed(1)} h)`;
  $("escrow").textContent = text;
}

const hoursLeft = (d) => (new Date(d.depletes_at).getTime() - Date.now()) / 3600e3;

// showRunway warns, above everything, of deployments whose funds run out
// within a day.
function showRunway(list) {
  const low = list.filter((d) => d.state === "active" && d.depletes_at && hoursLeft(d) < 24);
  $("runway").hidden = low.length === 0;
  $("runway").textContent = low.map((d) => `Deployment ${d.dseq} runs out of funds in ${Math.max(0, hoursLeft(d)).toFixed(1)} hours: add funds or set an auto top-up.`).join("\n");
}

// setTopUp sets the open deployment's automatic refill: the chain adds
// the amount from this account when the funds run low, up to the limit.
async function setTopUp() {
  if (!current) return;
  const c = state.chain;
  notice("");
  let amount, limit;
  try {
    amount = parseAmount($("topup-amount").value, c.exponent);
    limit = parseAmount($("topup-limit").value, c.exponent);
  } catch (e) {
    notice(`Auto top-up: ${e.message}`);
    return;
  }
  try {
    const res = await sendTx([{ "@type": "/gpunet.escrow.v1.MsgSetAutoTopUp", payer: state.address, account: { owner: state.address, dseq: current.dseq },
      amount: { denom: c.denom, amount }, limit: { denom: c.denom, amount: limit } }], "", (t) => { $("topup-state").textContent = t; });
    $("topup-state").textContent = `set in block ${res.height}: ${formatAmount(amount, c.exponent, c.display_denom)} per refill, ${formatAmount(limit, c.exponent, c.display_denom)} in all`;
  } catch (e) {
    $("topup-state").textContent = "";
    notice(`Auto top-up failed: ${e.message}`);
  }
}

// parseAmount reads a display-denom amount ("2.5") as base units, exactly;
// it throws on anything else.
export function parseAmount(text, exponent) {
  const m = /^\s*(\d+)(?:\.(\d+))?\s*$/.exec(text);
  if (!m || (m[2] && m[2].length > exponent)) throw new Error(`"${text}" is not an amount with at most ${exponent} decimals`);
  const base = (m[1] + (m[2] || "").padEnd(exponent, "0")).replace(/^0+(?=\d)/, "");
  if (/^0+$/.test(base)) throw new Error("the amount must be more than zero");
  return base;
}

// addFunds deposits into the open lease's deployment account: the
// backend builds the transaction, the wallet signs it, the block says.
async function addFunds() {
  if (!current) return;
  const c = state.chain;
  notice("");
  let amount;
  try {
    amount = parseAmount($("fund-amount").value, c.exponent);
  } catch (e) {
    notice(e.message);
    return;
  }
  $("fund").disabled = true;
  $("fund-state").textContent = "waiting for the wallet…";
  try {
    const msg = { "@type": "/gpunet.escrow.v1.MsgDeposit", depositor: state.address, account: { owner: state.address, dseq: current.dseq }, amount: { denom: c.denom, amount } };
    const res = await sendTx([msg], "", (step) => { $("fund-state").textContent = step; });
    $("fund-state").textContent = `added ${formatAmount(amount, c.exponent, c.display_denom)} in block ${res.height} (fee ${res.fee})`;
    $("fund-state").dataset.fee = res.fee;
    showEscrow(await api(`/api/accounts/${state.address}/deployments/${current.dseq}`));
    await refreshDeployments(); // the list and the runway banner
    await refreshBalance();
  } catch (e) {
    $("fund-state").textContent = "";
    notice(`Adding funds failed: ${e.message}`);
  } finally {
    $("fund").disabled = false;
  }
}
let logsAbort = null;

function openLease(d, l) {
  stopLogs();
  current = { dseq: d.dseq, ...l };
  $("lease").hidden = false;
  $("lease-id").textContent = `${d.dseq}/${l.gseq}/${l.oseq}`;
  $("lease-provider").textContent = `provider ${l.provider} · ${l.state} · ${l.price_per_hour}/h`;
  showEscrow(d);
  $("fund-state").textContent = "";
  // A line of its own while the provider answers, in a box kept the height
  // of a usual status: the buttons below stay where they are.
  $("lease-status").textContent = "asking the provider…";
  $("events").textContent = "";
  const opened = current;
  showLease().catch((e) => {
    if (current === opened) $("lease-status").textContent = "";
    notice(`Lease status: ${e.message}`);
  });
  $("logs").textContent = "";
  $("logs-state").textContent = "";
}

// showLease reads the open lease from its provider: each replica's state,
// GPUs and ports, the lease's URIs, and its events.
async function showLease() {
  const l = current;
  const base = `/v1/leases/${state.address}/${l.dseq}/${l.gseq}/${l.oseq}`;
  const st = await (await providerFetch(l.provider, "GET", base + "/status")).json();
  if (current !== l) return;
  const lines = [`${st.state} · ${st.phase}${st.version ? " · version " + st.version.slice(0, 12) : ""}`];
  for (const u of st.uris || []) lines.push(`uri ${u}`);
  for (const r of st.replicas || []) {
    let line = `${r.service}-${r.replica} ${r.state}${r.exit_code ? " (exit " + r.exit_code + ")" : ""} · ${r.image}`;
    for (const p of r.ports || []) line += ` · ${p.port}/${p.proto} at ${p.host_ip}:${p.host_port}`;
    for (const g of r.gpus || []) line += ` · GPU ${g.model || ""} ${g.uuid}`;
    if (r.error) line += ` · ${r.error}`;
    lines.push(line);
  }
  $("lease-status").textContent = lines.join("\n");
  const text = await (await providerFetch(l.provider, "GET", base + "/events")).text();
  if (current !== l) return;
  $("events").textContent = text.split("\n").filter(Boolean).map((j) => {
    const e = JSON.parse(j);
    const who = e.service ? `${e.service}-${e.replica ?? 0}  ` : "";
    return `${new Date(e.time).toLocaleTimeString()}  ${who}${e.kind}${e.message ? ": " + e.message : ""}`;
  }).join("\n");
}

// followLogs streams the lease's logs into the page until stopped or the
// workload ends.
async function followLogs() {
  if (!current) return;
  stopLogs();
  const ctl = new AbortController();
  logsAbort = ctl;
  $("logs-stop").hidden = false;
  $("logs-state").textContent = "connecting…";
  const path = `/v1/leases/${state.address}/${current.dseq}/${current.gseq}/${current.oseq}/logs?follow=true&tail=200`;
  try {
    const res = await providerFetch(current.provider, "GET", path, "", ctl.signal);
    $("logs-state").textContent = "following";
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      $("logs").textContent += dec.decode(value, { stream: true });
      $("logs").scrollTop = $("logs").scrollHeight;
    }
    $("logs-state").textContent = "ended";
  } catch (e) {
    if (ctl.signal.aborted) return;
    $("logs-state").textContent = "";
    notice(`Logs: ${e.message}`);
  } finally {
    if (logsAbort === ctl) $("logs-stop").hidden = true;
  }
}

// updateLease moves the open lease's deployment to the file in the
// editor, in place: the chain records the new manifest hash, the provider
// gets the manifest and swaps the containers; the old version runs on
// when the new one does not start, and the page says why.
async function updateLease() {
  if (!current) return;
  const l = current;
  notice("");
  $("update").disabled = true;
  const say = (t) => { $("update-state").textContent = t; };
  try {
    const p = await api("/api/deploy/update", { sdl: $("sdl").value, owner: state.address, dseq: l.dseq });
    const want = p.group_hashes[l.gseq - 1];
    const res = await sendTx([p.msg], "", say);
    say(`manifest ${p.manifest_hash.slice(0, 12)} on chain (block ${res.height}); sending it…`);
    const base = `/v1/leases/${state.address}/${l.dseq}/${l.gseq}/${l.oseq}`;
    const dep = await api(`/api/accounts/${state.address}/deployments/${l.dseq}`);
    await providerFetch(l.provider, "PUT", `/v1/deployments/${state.address}/${l.dseq}/manifest`, manifestFor(p.manifest, dep.leases, l.provider));
    for (let i = 0; i < 300; i++) {
      const st = await (await providerFetch(l.provider, "GET", base + "/status")).json();
      if (st.update_error && st.update_error_for === want) throw new Error(`the new version did not start; the old one runs on: ${st.update_error}`);
      if (st.version === want && (st.replicas || []).every((r) => r.state === "running" || r.state === "exited")) {
        say(`version ${want.slice(0, 12)} running`);
        await showLease();
        return;
      }
      say(`updating (${st.phase})…`);
      await sleep(1000);
    }
    throw new Error("the update did not finish within five minutes");
  } catch (e) {
    say("");
    notice(`Update: ${e.message}`);
  } finally {
    $("update").disabled = false;
  }
}

// revokeSessions ends every browser session of this owner with the open
// lease's provider (on every device), this one included.
async function revokeSessions() {
  if (!current) return;
  try {
    const res = await (await providerFetch(current.provider, "POST", `/v1/grants/${state.address}/revoke`)).json();
    sessions.delete(current.provider);
    revokedUntil.set(current.provider, res.revoked_before);
    $("revoke-state").textContent = `sessions revoked; a new one can be opened after ${new Date((res.revoked_before - 55) * 1000).toLocaleTimeString()}`;
  } catch (e) {
    notice(`Revoking sessions failed: ${e.message}`);
  }
}

function stopLogs() {
  if (logsAbort) {
    logsAbort.abort();
    logsAbort = null;
    $("logs-state").textContent = "stopped";
  }
  $("logs-stop").hidden = true;
}

// sendTx has the backend build a transaction of msgs, the wallet sign it
// (direct mode: it signs the exact bytes shown) and the backend broadcast
// it; it resolves with the committed transaction.
export async function sendTx(msgs, memo = "", progress = () => {}) {
  progress("building the transaction…");
  const u = await api("/api/tx/build", { address: state.address, pubkey: state.pubkey, msgs, memo, amino: state.amino });
  progress(`waiting for the wallet (fee ${u.fee})…`);
  let body = u.body_bytes, authInfo = u.auth_info_bytes, signature;
  if (state.amino) {
    // The wallet signs the amino JSON of exactly this transaction; it
    // must keep the console's fee, or the bytes would differ.
    const res = await state.wallet.signAmino(u.chain_id, state.address, u.amino_sign_doc, { preferNoSetFee: true });
    if (JSON.stringify(res.signed.fee) !== JSON.stringify(u.amino_sign_doc.fee) || res.signed.memo !== u.amino_sign_doc.memo) {
      throw new Error("the wallet changed the transaction's fee or memo; sign it as shown");
    }
    signature = res.signature.signature;
  } else {
    // preferNoSetFee: the wallet keeps the fee the console computed and
    // showed, rather than its own.
    const res = await state.wallet.signDirect(u.chain_id, state.address, {
      bodyBytes: unb64(u.body_bytes), authInfoBytes: unb64(u.auth_info_bytes), chainId: u.chain_id, accountNumber: u.account_number,
    }, { preferNoSetFee: true });
    body = b64(res.signed.bodyBytes);
    authInfo = b64(res.signed.authInfoBytes);
    signature = res.signature.signature;
  }
  progress("waiting for a block…");
  const res = await api("/api/tx/broadcast", { body_bytes: body, auth_info_bytes: authInfo, signature });
  return { ...res, fee: u.fee };
}

async function start() {
  $("connect").addEventListener("click", connect);
  $("refresh").addEventListener("click", () => { refreshBalance(); refreshDeployments(); });
  $("logs-follow").addEventListener("click", followLogs);
  $("logs-stop").addEventListener("click", stopLogs);
  $("fund").addEventListener("click", addFunds);
  $("withdraw").addEventListener("click", withdraw);
  $("topup").addEventListener("click", setTopUp);
  $("revoke").addEventListener("click", revokeSessions);
  $("update").addEventListener("click", updateLease);
  $("shell-run").addEventListener("click", runShell);
  $("shell-send").addEventListener("click", () => { shellSend(0x69, new TextEncoder().encode($("shell-in").value + "\n")); $("shell-in").value = ""; });
  $("shell-eof").addEventListener("click", () => shellSend(0x65, new Uint8Array()));
  $("template").addEventListener("change", pickTemplate);
  $("check").addEventListener("click", () => plan().catch(() => {}));
  $("deploy").addEventListener("click", deploy);
  // The editor keeps what was typed, whatever happens: across reloads too.
  $("sdl").value = localStorage.getItem("gpunet.sdl") || "";
  $("sdl").addEventListener("input", () => localStorage.setItem("gpunet.sdl", $("sdl").value));
  try {
    state.chain = await api("/api/chain");
    $("chain").textContent = state.chain.chain_id;
  } catch (e) {
    notice(`The console cannot reach the chain: ${e.message}`);
    $("connect").disabled = true;
  }
}

start();
