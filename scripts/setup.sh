#!/usr/bin/env bash
# Installs and starts what gpunet's build, demo and tests need on a Debian
# machine and that Go alone does not bring: protoc for `make proto-check`,
# and a running Docker engine for the provider daemon's containers.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=none; fi
fi

need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v git >/dev/null 2>&1 || need+=(git)
command -v make >/dev/null 2>&1 || need+=(make)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$SUDO" = none ]; then
    echo "please install: ${need[*]} (as root: apt-get install -y ${need[*]})" >&2
    exit 1
  fi
  echo "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# A Docker engine must answer. Without systemd (containers, CI) start dockerd
# ourselves in the background.
if ! docker info >/dev/null 2>&1; then
  if [ "$SUDO" = none ]; then
    echo "the Docker engine is not running and this user cannot start it: ask an admin to run dockerd, or add you to the docker group" >&2
    exit 1
  fi
  if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
    $SUDO systemctl start docker || true
  fi
  if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd (log: /var/log/gpunet-dockerd.log)"
    $SUDO sh -c 'nohup dockerd >/var/log/gpunet-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "dockerd did not come up; see /var/log/gpunet-dockerd.log" >&2
    tail -n 20 /var/log/gpunet-dockerd.log >&2 || true
    exit 1
  fi
fi
