# Shared settings of the local Kubernetes cluster scripts (sourced).
K8S_STATE=${K8S_STATE:-/var/tmp/gpunet-k8s}
K8S_API_PORT=${K8S_API_PORT:-16443}
K8S_ETCD_PORT=${K8S_ETCD_PORT:-12379}
K8S_POD_CIDR=${K8S_POD_CIDR:-10.244.0.0/24}
K8S_SERVICE_CIDR=${K8S_SERVICE_CIDR:-10.96.0.0/16}
K8S_BRIDGE=${K8S_BRIDGE:-gpnk8s0}
K8S_PAUSE_IMAGE=gpunet.local/pause:v1
K8S_SOCK=$K8S_STATE/containerd/containerd.sock
# Components in start order; down.sh stops them in reverse.
K8S_COMPONENTS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
# Host paths kubelet and the CNI plugins write whatever their flags say.
K8S_HOST_PATHS=(/var/lib/cni /var/log/containers /var/log/pods /var/lib/kubelet)
# Sysctls kubelet and kube-proxy set (route_localnet: node ports on
# 127.0.0.1).
K8S_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.conf.all.route_localnet)

k8s_as_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "the local Kubernetes cluster needs root (containerd, kubelet, mounts): run as root or with sudo" >&2
    exit 1
  fi
}

k8s_ctr() { ctr -a "$K8S_SOCK" -n k8s.io "$@"; }
