#!/usr/bin/env bash
# Makes the local cluster's PKI with openssl: a CA, the service-account key
# pair, the API server's serving certificate, client certificates (admin,
# the API server to the kubelets, the node, the controller manager, the
# scheduler, the gpunet provider daemon) and their kubeconfigs.
#
#   scripts/k8s/mkpki.sh DIR API_URL
set -euo pipefail
dir=$1 api=$2
mkdir -p "$dir"
cd "$dir"
days=3650

openssl genrsa -out ca.key 2048 2>/dev/null
openssl req -x509 -new -key ca.key -subj "/CN=gpunet-k8s-ca" -days $days -out ca.crt 2>/dev/null
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null

# cert NAME SUBJECT [SAN]
cert() {
  local name=$1 subj=$2 san=${3:-}
  openssl genrsa -out "$name.key" 2048 2>/dev/null
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [ -n "$san" ]; then
      echo "extendedKeyUsage=serverAuth"
      echo "subjectAltName=$san"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days $days -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

cert apiserver "/CN=kube-apiserver" "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert admin "/O=system:masters/CN=gpunet-admin"
cert kubelet "/O=system:nodes/CN=system:node:localhost"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert kube-proxy "/CN=system:kube-proxy"
cert gpunet-provider "/CN=gpunet-provider"

# kubeconfig NAME: a kubeconfig for NAME's client certificate.
kubeconfig() {
  local name=$1
  cat >"$name.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: gpunet-k8s
  cluster:
    server: $api
    certificate-authority: $dir/ca.crt
users:
- name: $name
  user:
    client-certificate: $dir/$name.crt
    client-key: $dir/$name.key
contexts:
- name: $name
  context: {cluster: gpunet-k8s, user: $name}
current-context: $name
KC
}
for n in admin kubelet controller-manager scheduler kube-proxy gpunet-provider; do kubeconfig "$n"; done
chmod 600 ./*.key
