#!/usr/bin/env bash
# Writes a single-layer OCI image archive from a root filesystem directory,
# for `ctr images import`: no Docker, no registry.
#
#   scripts/k8s/mkoci.sh ROOTFS NAME OUT.tar [ENTRYPOINT...]
#
# NAME is the image's full name (e.g. gpunet.local/pause:v1): a domain
# with a dot, so nothing adds a registry host to it.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 ROOTFS NAME OUT.tar [ENTRYPOINT...]" >&2
  exit 2
fi
rootfs=$1 name=$2 out=$3
shift 3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"

json_array() { # json_array a b c → ["a","b","c"]
  local sep="" s
  printf '['
  for s in "$@"; do
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '%s"%s"' "$sep" "$s"
    sep=,
  done
  printf ']'
}

blob() { # blob FILE → moves it under blobs/, prints "digest size"
  local d s
  d=$(sha256sum "$1" | cut -d' ' -f1)
  s=$(stat -c %s "$1")
  mv "$1" "$work/blobs/sha256/$d"
  echo "$d $s"
}

tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 -C "$rootfs" -cf "$work/layer" .
diffid=$(sha256sum "$work/layer" | cut -d' ' -f1)
read -r layer lsize < <(blob "$work/layer")

printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$(json_array "$@")" "$diffid" >"$work/config"
read -r config csize < <(blob "$work/config")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config" "$csize" "$layer" "$lsize" >"$work/manifest"
read -r manifest msize < <(blob "$work/manifest")

printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$msize" "$name" "${name##*:}" >"$work/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
tar --numeric-owner --owner=0 --group=0 -C "$work" -cf "$out" oci-layout index.json blobs
