#!/usr/bin/env bash
# Builds the Kubernetes server binaries gpunet's Kubernetes runtime is
# tested against (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kube-proxy) and etcd, from the Go module proxy, into a cache outside the work
# tree. Nothing is built when the cache already has them: the first build
# takes about ten minutes and 3 GB of memory on two cores, later ones none.
#
#   scripts/k8s/build.sh            # prints the bin directory
#   K8S_CACHE=/path scripts/k8s/build.sh
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
GOVER=$(go env GOVERSION)
CACHE=${K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpunet/k8s-${K8S_VERSION}-${GOVER}}
BIN=$CACHE/bin
SERVERS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

have_all() {
  for b in "${SERVERS[@]}" etcd; do
    [ -x "$BIN/$b" ] || return 1
  done
}

if have_all; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$CACHE/src/kubernetes" "$CACHE/src/etcd" "$BIN"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local

# Kubernetes: a module that requires k8s.io/kubernetes and points each of
# its staging modules (replaced by local paths in its own go.mod) at the
# published v0.x of the same release.
staging=${K8S_VERSION/v1./v0.}
gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
if [ ! -f "$gomod" ]; then
  echo "build.sh: could not download k8s.io/kubernetes@$K8S_VERSION's go.mod from the module proxy" >&2
  exit 1
fi
{
  echo "module gpunet.local/k8s-build"
  echo
  echo "go $(go env GOVERSION | sed 's/^go//; s/\([0-9]*\.[0-9]*\).*/\1/')"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  grep -E '^\s*k8s\.io/[A-Za-z0-9._-]+ => \./staging/' "$gomod" |
    awk -v v="$staging" '{ printf "replace %s => %s %s\n", $1, $1, v }'
} >"$CACHE/src/kubernetes/go.mod"
if [ "$(grep -c '^replace' "$CACHE/src/kubernetes/go.mod")" -lt 20 ]; then
  echo "build.sh: found too few staging modules in $gomod; its layout changed?" >&2
  exit 1
fi
cat >"$CACHE/src/kubernetes/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
)
GO
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean -X $pkg/verflag.programName=kubernetes"
(
  cd "$CACHE/src/kubernetes"
  go mod tidy -e >/dev/null
  for s in "${SERVERS[@]}"; do
    echo "building $s $K8S_VERSION" >&2
    go build -tags tools -trimpath -ldflags "$ldflags" -o "$BIN/$s.tmp" "k8s.io/kubernetes/cmd/$s"
    mv "$BIN/$s.tmp" "$BIN/$s"
  done
)

# etcd, with the Kubernetes build's modules mostly cached.
cat >"$CACHE/src/etcd/go.mod" <<GOMOD
module gpunet.local/etcd-build

go $(go env GOVERSION | sed 's/^go//; s/\([0-9]*\.[0-9]*\).*/\1/')

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
cat >"$CACHE/src/etcd/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
(
  cd "$CACHE/src/etcd"
  go mod tidy -e >/dev/null
  echo "building etcd $ETCD_VERSION" >&2
  go build -tags tools -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN/etcd.tmp" "$BIN/etcd"
)
have_all
echo "$BIN"
