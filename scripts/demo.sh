#!/usr/bin/env bash
# The main job: on one machine, a local gpunet chain, a provider daemon and a
# tenant renting a GPU slot end to end. It installs and starts what is
# missing (Docker engine, protoc), builds the binaries and the sample job
# image, starts the chain from config.yml, registers and runs a provider
# (NVML inventory with a GPU, the clearly marked declared inventory without),
# deploys examples/gpu-job.yaml with --follow and prints the settlement.
# KEEP=1 leaves the chain and the provider running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${LOCALNET_DIR:-$HOME/.gpunet-localnet}
PROV_DIR=${PROVIDER_DIR:-$DIR/provider}
BIN=build/gpunetd
PBIN=build/gpunet-provider
SDL=${SDL:-examples/gpu-job.yaml}

if ! command -v go >/dev/null 2>&1; then
  echo "gpunet needs Go (1.26 or newer) on PATH: https://go.dev/doc/install" >&2
  exit 1
fi

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "checking the machine (Docker engine, protoc)"
scripts/setup.sh

step "building gpunetd, gpunet-provider and localnet"
make --no-print-directory build

step "building the sample job image locally (nothing is pulled)"
scripts/build-images.sh

provider_pid=""
provider=""
cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then
    step "cleaning up"
    if [ -n "$provider_pid" ]; then kill "$provider_pid" 2>/dev/null || true; wait "$provider_pid" 2>/dev/null || true; fi
    # The demo provider's containers, then its per-lease gpunet-* networks
    # (a network goes only once no container uses it).
    if [ -n "$provider" ]; then
      ids=$(docker ps -aq --filter "label=gpunet.provider=$provider" 2>/dev/null || true)
      if [ -n "$ids" ]; then docker rm -f $ids >/dev/null 2>&1 || true; fi
      nets=$(docker network ls -q --filter "label=gpunet.provider=$provider" --filter name=gpunet- 2>/dev/null || true)
      if [ -n "$nets" ]; then docker network rm $nets >/dev/null 2>&1 || true; fi
    fi
    build/localnet down --dir "$DIR" || true
  else
    echo
    echo "The chain and the provider keep running. Stop them with:"
    echo "  kill $provider_pid; make localnet-down"
  fi
}
trap cleanup EXIT
trap 'echo; echo "interrupted: cleaning up (KEEP=1 would have left everything running)"; exit 130' INT TERM

step "starting the local chain from config.yml"
build/localnet down --dir "$DIR" >/dev/null 2>&1 || true
build/localnet up --config config.yml --dir "$DIR" --binary "$BIN" --validators 1

export GPUNETD_HOME="$DIR/node0"
tenant=$($BIN keys show tenant -a --keyring-backend test)
provider=$($BIN keys show provider -a --keyring-backend test)
chain_id=$(sed -n 's/^chain_id: *//p' config.yml)

step "setting up the provider daemon"
rm -rf "$PROV_DIR"
$PBIN --config "$PROV_DIR/provider.yaml" init --chain-id "$chain_id" --key provider --keyring-backend test \
  --host-uri https://127.0.0.1:8443 --listen 127.0.0.1:8443
# The demo's provider: keys from the local chain's keyring, ports on
# loopback, quick reconcile and payouts, and a declared H100 used only when
# NVML finds no NVIDIA driver on this machine.
sed -i \
  -e "s#keyring_dir: \"\"#keyring_dir: \"$GPUNETD_HOME\"#" \
  -e 's#publish_host: 0.0.0.0#publish_host: 127.0.0.1#' \
  -e 's#pull_images: true#pull_images: false#' \
  -e 's#reconcile_interval: 30s#reconcile_interval: 5s#' \
  -e 's#withdraw_interval: 1h#withdraw_interval: 15s#' \
  -e 's#listen: 0.0.0.0:80 #listen: "off"    #' \
  -e 's#declared: \[\]#declared:\n    - {model: h100, memory_mib: 81559, interface: sxm, count: 1}#' \
  "$PROV_DIR/provider.yaml"
# The daemon installs the lease egress filter itself when it runs as root;
# otherwise the rules go in through sudo and the daemon only verifies them.
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then
    $PBIN --config "$PROV_DIR/provider.yaml" egress rules | sudo -n sh
    sed -i 's#egress_filter: install#egress_filter: verify#' "$PROV_DIR/provider.yaml"
  else
    echo "note: not root and no passwordless sudo: the demo's leases run WITHOUT the egress filter (README: Securing a provider host)"
    sed -i 's#egress_filter: install#egress_filter: off#' "$PROV_DIR/provider.yaml"
  fi
fi
$PBIN --config "$PROV_DIR/provider.yaml" inventory
$PBIN --config "$PROV_DIR/provider.yaml" register

$PBIN --config "$PROV_DIR/provider.yaml" run >"$PROV_DIR/daemon.log" 2>&1 &
provider_pid=$!
for _ in $(seq 1 30); do
  curl -ksf https://127.0.0.1:8443/healthz >/dev/null 2>&1 && break
  sleep 0.5
done
echo "provider daemon running (pid $provider_pid, log $PROV_DIR/daemon.log)"

balance() { $BIN query bank balance "$1" ugpn --output json | tr -d ' \n' | sed -n 's/.*"amount":"\([0-9]*\)".*/\1/p'; }
t0=$(balance "$tenant")

step "tenant deploys $SDL and follows it"
$BIN sdl check "$SDL"
echo
$BIN deploy "$SDL" --from tenant --keyring-backend test --chain-id "$chain_id" --deposit 20000000ugpn --follow

t1=$(balance "$tenant")
step "what the provider daemon decided"
grep -E 'msg="(bid placed|lease won|manifest received|workload started|lease started|job finished|lease closed|earnings withdrawn)' "$PROV_DIR/daemon.log" \
  | sed -E 's/^time=[^ ]+ //' || true
echo
echo "tenant balance: $t0 -> $t1 ugpn (spent $((t0 - t1)) ugpn including the deployment's fee)"
