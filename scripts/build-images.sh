#!/usr/bin/env bash
# Builds the sample images locally (nothing is pulled from a registry):
# gpunet/gpu-job:latest from examples/images/gpu-job.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -trimpath -o "$tmp/gpu-job" ./examples/images/gpu-job
cp examples/images/gpu-job/Dockerfile "$tmp/"
docker build -q -t gpunet/gpu-job:latest "$tmp" >/dev/null
echo "built gpunet/gpu-job:latest"
