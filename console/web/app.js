// gpunet console: the page. It talks only to its own backend (the
// console), which reads the chain, builds transactions and relays signed
// requests to providers; the browser wallet (Keplr or Leap) holds the keys
// and signs.

const $ = (id) => document.getElementById(id);
const state = { chain: null, address: "", pubkey: "", wallet: null };

// api calls the backend; a failure throws an Error whose message is the
// backend's sentence and whose kind names the problem.
export async function api(path, body) {
  const init = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
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
    $("account").textContent = key.name ? `${key.name} · ${short(state.address)}` : short(state.address);
    $("address").textContent = state.address;
    $("welcome").hidden = true;
    $("wallet").hidden = false;
    $("connect").textContent = "Connected";
    await refreshBalance();
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

// sendTx has the backend build a transaction of msgs, the wallet sign it
// (direct mode: it signs the exact bytes shown) and the backend broadcast
// it; it resolves with the committed transaction.
export async function sendTx(msgs, memo = "") {
  const u = await api("/api/tx/build", { address: state.address, pubkey: state.pubkey, msgs, memo });
  const signed = await state.wallet.signDirect(u.chain_id, state.address, {
    bodyBytes: unb64(u.body_bytes), authInfoBytes: unb64(u.auth_info_bytes), chainId: u.chain_id, accountNumber: u.account_number,
  });
  return api("/api/tx/broadcast", {
    body_bytes: b64(signed.signed.bodyBytes), auth_info_bytes: b64(signed.signed.authInfoBytes), signature: signed.signature.signature,
  });
}

async function start() {
  $("connect").addEventListener("click", connect);
  $("refresh").addEventListener("click", refreshBalance);
  try {
    state.chain = await api("/api/chain");
    $("chain").textContent = state.chain.chain_id;
  } catch (e) {
    notice(`The console cannot reach the chain: ${e.message}`);
    $("connect").disabled = true;
  }
}

start();
