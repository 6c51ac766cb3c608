#!/usr/bin/env bash
# Starts a one-node Kubernetes cluster on this host for gpunet's Kubernetes
# runtime: its own containerd (apart from Docker's), etcd, the API server,
# controller manager, scheduler and a kubelet, all on loopback, with a
# bridge CNI and a locally built pause image (no registry). The server
# binaries come from scripts/k8s/build.sh's cache. scripts/k8s/down.sh
# stops it and undoes every change to the host.
#
#   sudo scripts/k8s/up.sh      # prints the admin kubeconfig's path
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
k8s_as_root

if [ -e "$K8S_STATE/up" ]; then
  echo "a cluster is up already (state in $K8S_STATE): scripts/k8s/down.sh first" >&2
  exit 1
fi
if [ -e "$K8S_STATE" ]; then
  "$here/down.sh" >/dev/null
fi

# Packages Debian has and the base image may lack.
need=()
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null || {
    apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "${need[@]}" >/dev/null
  }
fi
bin=$("$here/build.sh")

mkdir -p "$K8S_STATE"/{pki,logs,pids,containerd,cni/net.d,cni/ipam,kubelet,pod-logs,images,etcd}
# What the host had before, for down.sh to put back.
for s in "${K8S_SYSCTLS[@]}"; do
  echo "$s=$(sysctl -n "$s")"
done >"$K8S_STATE/baseline.sysctl"
for p in "${K8S_HOST_PATHS[@]}"; do
  [ -e "$p" ] && echo "$p"
done >"$K8S_STATE/baseline.paths" || true

api=https://127.0.0.1:$K8S_API_PORT
# The kubelet serves on the host's own address: the API server reaches it
# there for logs, exec and the stats it proxies (it refuses to proxy to a
# loopback address).
node_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1)}')
if [ -z "$node_ip" ]; then
  node_ip=$(hostname -I | awk '{print $1}')
fi
if [ -z "$node_ip" ]; then
  echo "up.sh: this host has no IPv4 address for the kubelet to serve on" >&2
  exit 1
fi
"$here/mkpki.sh" "$K8S_STATE/pki" "$api"
pki=$K8S_STATE/pki

# start NAME CMD...: runs a component in its own session, logging to
# logs/NAME.log.
start() {
  local name=$1
  shift
  setsid "$@" >"$K8S_STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$K8S_STATE/pids/$name"
}
# wait_for WHAT SECONDS CMD...: until CMD succeeds.
wait_for() {
  local what=$1 secs=$2
  shift 2
  for _ in $(seq $((secs * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "$what did not come up within ${secs}s; its log:" >&2
  return 1
}

cat >"$K8S_STATE/containerd.toml" <<TOML
version = 2
root = "$K8S_STATE/containerd/root"
state = "$K8S_STATE/containerd/state"
[grpc]
  address = "$K8S_SOCK"
[ttrpc]
  address = "$K8S_SOCK.ttrpc"
[debug]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$K8S_PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$K8S_STATE/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$K8S_STATE/cni/net.d"
TOML
cat >"$K8S_STATE/cni/net.d/10-gpunet.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "gpunet-k8s", "plugins": [
  {"type": "bridge", "bridge": "$K8S_BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$K8S_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$K8S_STATE/cni/ipam"}},
  {"type": "loopback"}]}
JSON
start containerd containerd --config "$K8S_STATE/containerd.toml"
wait_for containerd 20 k8s_ctr version || { tail -20 "$K8S_STATE/logs/containerd.log" >&2; exit 1; }

start etcd "$bin/etcd" --data-dir "$K8S_STATE/etcd" --listen-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" \
  --advertise-client-urls "http://127.0.0.1:$K8S_ETCD_PORT" --listen-peer-urls "http://127.0.0.1:$((K8S_ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((K8S_ETCD_PORT + 1))" --initial-cluster "default=http://127.0.0.1:$((K8S_ETCD_PORT + 1))"

# The pause image: a static binary, one layer.
mkdir -p "$K8S_STATE/images/pause/rootfs"
(cd "$here/../.." && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$K8S_STATE/images/pause/rootfs/pause" ./scripts/k8s/pause)
"$here/mkoci.sh" "$K8S_STATE/images/pause/rootfs" "$K8S_PAUSE_IMAGE" "$K8S_STATE/images/pause.tar" /pause
k8s_ctr images import "$K8S_STATE/images/pause.tar" >/dev/null

start kube-apiserver "$bin/kube-apiserver" --bind-address=127.0.0.1 --secure-port="$K8S_API_PORT" \
  --etcd-servers="http://127.0.0.1:$K8S_ETCD_PORT" --service-cluster-ip-range="$K8S_SERVICE_CIDR" \
  --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP --authorization-mode=Node,RBAC \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" --allow-privileged=false
kubectl_() { kubectl --kubeconfig "$pki/admin.kubeconfig" "$@"; }
wait_for kube-apiserver 60 kubectl_ get --raw /readyz || { tail -20 "$K8S_STATE/logs/kube-apiserver.log" >&2; exit 1; }

start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig="$pki/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$pki/controller-manager.kubeconfig" --authorization-kubeconfig="$pki/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key"
start kube-scheduler "$bin/kube-scheduler" --kubeconfig="$pki/scheduler.kubeconfig" \
  --authentication-kubeconfig="$pki/scheduler.kubeconfig" --authorization-kubeconfig="$pki/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false

cat >"$K8S_STATE/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $node_ip
authentication:
  x509: {clientCAFile: $pki/ca.crt}
  webhook: {enabled: false}
  anonymous: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$K8S_SOCK
makeIPTablesUtilChains: false
podLogsDir: $K8S_STATE/pod-logs
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
podPidsLimit: 1024
YAML
start kubelet "$bin/kubelet" --kubeconfig="$pki/kubelet.kubeconfig" --config="$K8S_STATE/kubelet-config.yaml" \
  --hostname-override=localhost --node-ip="$node_ip" --root-dir="$K8S_STATE/kubelet" --cert-dir="$K8S_STATE/kubelet/pki"
node_ready() { kubectl_ get node localhost -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -q True; }
wait_for "the node" 90 node_ready || { tail -20 "$K8S_STATE/logs/kubelet.log" >&2; exit 1; }
# kube-proxy, for node ports (iptables mode; down.sh removes its chains).
# Conntrack settings 0: it leaves the host's as they are.
cat >"$K8S_STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $pki/kube-proxy.kubeconfig}
hostnameOverride: localhost
mode: iptables
clusterCIDR: $K8S_POD_CIDR
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
start kube-proxy "$bin/kube-proxy" --config="$K8S_STATE/kube-proxy.yaml"
proxy_ready() { curl -fsS http://127.0.0.1:10256/healthz >/dev/null; }
wait_for kube-proxy 60 proxy_ready || { tail -20 "$K8S_STATE/logs/kube-proxy.log" >&2; exit 1; }
# The gpunet provider daemon's identity, with only the RBAC the README
# gives it.
kubectl_ apply -f "$here/rbac.yaml" >/dev/null
wait_for "the default service account" 60 kubectl_ -n default get serviceaccount default || exit 1
touch "$K8S_STATE/up"
echo "$pki/admin.kubeconfig"
