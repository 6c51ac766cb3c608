#!/usr/bin/env bash
# Installs and starts what gpunet's build, demo and tests need on a Debian
# machine and that Go alone does not bring: protoc for `make proto-check`,
# a running Docker engine for the provider daemon's containers, and
# Chromium for the web console's browser tests.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=none; fi
fi

docker_by_hand() {
  cat >&2 <<'EOF'
To install Docker by hand on Debian/Ubuntu:
  sudo apt-get update && sudo apt-get install -y docker.io
or follow https://docs.docker.com/engine/install/ , then start it
(`sudo systemctl start docker`, or without systemd `sudo dockerd &`) and
run this script again.
EOF
}

# docker_state prints ok, denied (the engine runs but this user may not use
# its socket) or down.
docker_state() {
  local out
  if out=$(docker info 2>&1 >/dev/null); then
    echo ok
  elif grep -qi 'permission denied' <<<"$out"; then
    echo denied
  else
    echo down
  fi
}

docker_denied() {
  local sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
  cat >&2 <<EOF
User $(id -un) may not use the Docker engine's socket ($sock:
permission denied), so this script does not start a second engine. Either
  - add yourself to the docker group, then log out and back in (or run
    'newgrp docker' in this shell):
      sudo usermod -aG docker $(id -un)
  - or run it as root: sudo env "PATH=\$PATH" make demo   (or make test)
EOF
  exit 1
}

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v git >/dev/null 2>&1 || need+=(git)
command -v make >/dev/null 2>&1 || need+=(make)
command -v curl >/dev/null 2>&1 || need+=(curl)
# Chromium, headless, for the web console's browser tests (TestConsole…).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# A local registry with a login, for the private-image tests.
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
# Docker: only when no engine answers and its programs are missing (an
# engine reached through DOCKER_HOST needs nothing installed here).
if [ "$(docker_state)" = down ] && ! { command -v docker && command -v dockerd; } >/dev/null 2>&1; then
  need+=(docker.io)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$SUDO" = none ]; then
    echo "please install: ${need[*]} (as root: apt-get install -y ${need[*]})" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing: ${need[*]}; this script installs them with apt-get, which this system lacks: install them with its package manager" >&2
    if [[ " ${need[*]} " == *" docker.io "* ]]; then docker_by_hand; fi
    exit 1
  fi
  echo "installing ${need[*]}"
  log=$(mktemp)
  if ! $SUDO apt-get update -qq >"$log" 2>&1; then
    echo "'${SUDO:+$SUDO }apt-get update' failed:" >&2
    tail -n 20 "$log" >&2
    echo "check the network and /etc/apt/sources.list, then run this script again; or install by hand: ${need[*]}" >&2
    if [[ " ${need[*]} " == *" docker.io "* ]]; then docker_by_hand; fi
    rm -f "$log"
    exit 1
  fi
  if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >"$log" 2>&1; then
    echo "'${SUDO:+$SUDO }apt-get install -y ${need[*]}' failed:" >&2
    tail -n 20 "$log" >&2
    if [[ " ${need[*]} " == *" docker.io "* ]]; then docker_by_hand; fi
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi

# A Docker engine must answer. Without systemd (containers, CI) start dockerd
# ourselves in the background.
state=$(docker_state)
if [ "$state" = denied ]; then docker_denied; fi
if [ "$state" != ok ]; then
  if [ "$SUDO" = none ]; then
    echo "the Docker engine is not running and this user cannot start it: ask an admin to run dockerd, or add you to the docker group" >&2
    exit 1
  fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl start docker || true
  fi
  state=$(docker_state)
  if [ "$state" = denied ]; then docker_denied; fi
  if [ "$state" != ok ]; then
    echo "starting dockerd (log: /var/log/gpunet-dockerd.log)"
    $SUDO sh -c 'nohup dockerd >/var/log/gpunet-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do
    state=$(docker_state)
    [ "$state" = down ] || break
    sleep 1
  done
  if [ "$state" = denied ]; then docker_denied; fi
  if [ "$state" != ok ]; then
    echo "dockerd did not come up; see /var/log/gpunet-dockerd.log" >&2
    $SUDO tail -n 20 /var/log/gpunet-dockerd.log >&2 || true
    exit 1
  fi
fi
