#!/usr/bin/env bash
# The main job: build gpunet, start a local chain from config.yml, and show a
# GPN transfer landing. KEEP=1 leaves the network running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${LOCALNET_DIR:-$HOME/.gpunet-localnet}
BIN=build/gpunetd

if ! command -v go >/dev/null 2>&1; then
  echo "gpunet needs Go (1.26 or newer) on PATH: https://go.dev/doc/install" >&2
  exit 1
fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "building gpunetd and localnet"
make --no-print-directory build

cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    step "stopping the local network"
    build/localnet down --dir "$DIR" || true
  fi
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

step "starting the local network from config.yml"
build/localnet up --config config.yml --dir "$DIR" --binary "$BIN" --validators "${VALIDATORS:-1}"

export GPUNETD_HOME="$DIR/node0"
tenant=$($BIN keys show tenant -a --keyring-backend test)
provider=$($BIN keys show provider -a --keyring-backend test)

height() { $BIN status 2>&1 | sed -n 's/.*"latest_block_height":"\([0-9]*\)".*/\1/p'; }
step "blocks are being produced"
for _ in 1 2 3; do echo "height $(height)"; sleep 1; done

balance() { $BIN query bank balance "$1" ugpn --output json | tr -d ' \n' | sed -n 's/.*"amount":"\([0-9]*\)".*/\1/p'; }
step "balances before"
t0=$(balance "$tenant"); p0=$(balance "$provider")
echo "tenant   $tenant  $t0 ugpn"
echo "provider $provider  $p0 ugpn"

step "tenant sends 25 GPN (25000000ugpn) to provider, paying a 5000ugpn fee"
txhash=$($BIN tx bank send tenant "$provider" 25000000ugpn --fees 5000ugpn --yes --output json | sed -n 's/.*"txhash":"\([0-9A-F]*\)".*/\1/p')
echo "tx $txhash submitted"
$BIN query wait-tx "$txhash" --timeout 30s --output json >/dev/null
echo "tx $txhash committed"

step "balances after"
t1=$(balance "$tenant"); p1=$(balance "$provider")
echo "tenant   $tenant  $t1 ugpn  (paid $((t0 - t1)) = 25000000 sent + 5000 fee)"
echo "provider $provider  $p1 ugpn  (received $((p1 - p0)))"

if [ "${KEEP:-0}" = 1 ]; then
  echo
  echo "The network keeps running (GPUNETD_HOME=$GPUNETD_HOME). Stop it with: make localnet-down"
fi
