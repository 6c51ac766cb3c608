#!/usr/bin/env bash
# Stops the local Kubernetes cluster scripts/k8s/up.sh started and undoes
# what it and its components did to the host: their processes and pod
# containers, mounts under the state directory, the sysctls kubelet sets,
# any iptables chains it made, its cgroups, the CNI bridge, and the host
# paths kubelet and the CNI plugins write regardless of their flags. The
# built binaries stay in their cache. Safe to run when nothing is up.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
k8s_as_root
[ -d "$K8S_STATE" ] || exit 0
rm -f "$K8S_STATE/up"

# stop NAME: SIGTERM, up to 15 s, then SIGKILL.
stop() {
  local f=$K8S_STATE/pids/$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 75); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$f"
}

# The kubelet first, then every pod container, then the control plane
# (the API server before etcd: it hangs when etcd goes first), containerd
# last.
stop kubelet
if [ -S "$K8S_SOCK" ]; then
  for t in $(k8s_ctr tasks ls -q 2>/dev/null); do
    k8s_ctr tasks kill -s SIGKILL "$t" >/dev/null 2>&1
  done
  sleep 1
  for t in $(k8s_ctr tasks ls -q 2>/dev/null); do
    k8s_ctr tasks delete -f "$t" >/dev/null 2>&1
  done
  for c in $(k8s_ctr containers ls -q 2>/dev/null); do
    k8s_ctr containers delete "$c" >/dev/null 2>&1
  done
fi
for (( i=${#K8S_COMPONENTS[@]}-1; i>=0; i-- )); do
  [ "${K8S_COMPONENTS[$i]}" = kubelet ] || stop "${K8S_COMPONENTS[$i]}"
done
# Shims of our containerd outlive it.
pkill -9 -f -- "-address $K8S_SOCK" 2>/dev/null

# Mounts under the state directory, deepest first.
awk -v s="$K8S_STATE" 'index($2, s) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null
done

# Sysctls back to what they were.
if [ -f "$K8S_STATE/baseline.sysctl" ]; then
  while IFS= read -r kv; do
    sysctl -q -w "$kv" >/dev/null 2>&1
  done <"$K8S_STATE/baseline.sysctl"
fi

# iptables chains kubelet may have made (none with makeIPTablesUtilChains
# off, but never leave one behind).
for ipt in iptables ip6tables; do
  command -v $ipt >/dev/null || continue
  for table in filter nat mangle; do
    rules=$($ipt -t $table -S 2>/dev/null) || continue
    grep -E -- '-j KUBE-' <<<"$rules" | grep '^-A' | sed 's/^-A/-D/' | while read -r r; do
      eval "$ipt -t $table $r" 2>/dev/null
    done
    grep -E '^-N KUBE-' <<<"$rules" | awk '{print $2}' | while read -r c; do
      $ipt -t $table -F "$c" 2>/dev/null
      $ipt -t $table -X "$c" 2>/dev/null
    done
  done
done

# Pod cgroups, deepest first.
for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$root" ] && find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
done
ip link del "$K8S_BRIDGE" 2>/dev/null

# Host paths that were not there before the cluster; in those that were,
# only what the cluster left.
for p in "${K8S_HOST_PATHS[@]}"; do
  if ! grep -qx "$p" "$K8S_STATE/baseline.paths" 2>/dev/null; then
    rm -rf "$p"
  fi
done
rm -f /var/lib/cni/results/gpunet-k8s-* 2>/dev/null
find /var/log/containers -maxdepth 1 -type l -lname "$K8S_STATE/*" -delete 2>/dev/null
rm -f /var/lib/kubelet/device-plugins/kubelet.sock 2>/dev/null

rm -rf "$K8S_STATE"
