#!/usr/bin/env bash
# Checks the local cluster scripts/k8s/up.sh started: a pod from a locally
# built image runs and its logs come back through the API, a Job completes,
# and a pod asking for an nvidia.com/gpu of a model is scheduled only once
# the node advertises that resource and model label (patched in: there is
# no GPU here). Leaves nothing behind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"
k8s_as_root
kc() { kubectl --kubeconfig "$K8S_STATE/pki/admin.kubeconfig" "$@"; }
ns=gpunet-smoke
img=gpunet.local/hello:v1
trap 'kc delete namespace $ns --wait=false >/dev/null 2>&1 || true' EXIT

mkdir -p "$K8S_STATE/images/hello/rootfs"
(cd "$here/../.." && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$K8S_STATE/images/hello/rootfs/hello" ./scripts/k8s/hello)
"$here/mkoci.sh" "$K8S_STATE/images/hello/rootfs" "$img" "$K8S_STATE/images/hello.tar" /hello
k8s_ctr images import "$K8S_STATE/images/hello.tar" >/dev/null

kc create namespace $ns >/dev/null
kc -n $ns run hello --image=$img --image-pull-policy=Never --restart=Never -- -sleep=1h pod >/dev/null
kc -n $ns wait --for=condition=Ready pod/hello --timeout=60s >/dev/null
kc -n $ns logs hello | grep -q "hello from gpunet: pod"
echo "pod: running, logs through the API"

kc -n $ns create job once --image=$img -- /hello job >/dev/null
kc -n $ns wait --for=condition=Complete job/once --timeout=60s >/dev/null
echo "job: completed"

cat <<YAML | kc -n $ns apply -f - >/dev/null
apiVersion: v1
kind: Pod
metadata: {name: gpu}
spec:
  restartPolicy: Never
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - {key: nvidia.com/gpu.product, operator: In, values: [NVIDIA-H100-80GB-HBM3]}
  containers:
  - name: gpu
    image: $img
    imagePullPolicy: Never
    args: [gpu]
    resources: {limits: {nvidia.com/gpu: 1}}
YAML
sleep 3
if [ "$(kc -n $ns get pod gpu -o jsonpath='{.spec.nodeName}')" != "" ]; then
  echo "smoke: the GPU pod was scheduled on a node without GPUs" >&2
  exit 1
fi
kc label node localhost nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3 --overwrite >/dev/null
kc patch node localhost --subresource=status --type=json -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"1"}]' >/dev/null
kc -n $ns wait --for=jsonpath='{.status.phase}'=Succeeded pod/gpu --timeout=60s >/dev/null
kc label node localhost nvidia.com/gpu.product- >/dev/null
kc patch node localhost --subresource=status --type=json -p '[{"op":"remove","path":"/status/capacity/nvidia.com~1gpu"}]' >/dev/null
echo "gpu: scheduled only once the node advertised nvidia.com/gpu and the model"
