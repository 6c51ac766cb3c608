package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gpunet/gpunet/provider/runtime/kube"
	"github.com/gpunet/gpunet/testutil/localnet"
)

// k8sCluster is the local one-node Kubernetes cluster of scripts/k8s
// (make k8s-up): the tests use the one that is up, or start it once and
// stop it when the package's tests end.
type k8sCluster struct {
	state string
	// admin is the cluster admin's client (the tests' eyes); the daemon
	// runs as gpunet-provider with the README's RBAC only.
	admin              kubernetes.Interface
	providerKubeconfig string
	// nodeIP is the node's InternalIP, where node ports answer.
	nodeIP string
}

var (
	clusterOnce    sync.Once
	cluster        *k8sCluster
	clusterErr     error
	clusterStarted bool
)

// k8sState is where scripts/k8s keep the cluster (env.sh's K8S_STATE).
func k8sState() string {
	if s := os.Getenv("K8S_STATE"); s != "" {
		return s
	}
	return "/var/tmp/gpunet-k8s"
}

// ensureCluster returns the local cluster, starting it (as root) if none
// is up, with the test workload image imported into its containerd.
func ensureCluster(t *testing.T) *k8sCluster {
	t.Helper()
	clusterOnce.Do(func() {
		state := k8sState()
		if _, err := os.Stat(filepath.Join(state, "up")); err != nil {
			out, err := asRoot(filepath.Join(repoRoot(), "scripts", "k8s", "up.sh")).CombinedOutput()
			if err != nil {
				clusterErr = errorf("scripts/k8s/up.sh: %v\n%s", err, out)
				return
			}
			clusterStarted = true
		}
		c := &k8sCluster{state: state, providerKubeconfig: filepath.Join(state, "pki", "gpunet-provider.kubeconfig")}
		cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(state, "pki", "admin.kubeconfig"))
		if err != nil {
			clusterErr = err
			return
		}
		if c.admin, err = kubernetes.NewForConfig(cfg); err != nil {
			clusterErr = err
			return
		}
		node, err := c.admin.CoreV1().Nodes().Get(context.Background(), "localhost", metav1.GetOptions{})
		if err != nil {
			clusterErr = err
			return
		}
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				c.nodeIP = a.Address
			}
		}
		if c.nodeIP == "" {
			clusterErr = errorf("node localhost has no InternalIP: %+v", node.Status.Addresses)
			return
		}
		clusterErr = c.importWorkload()
		cluster = c
	})
	if clusterErr != nil {
		t.Fatalf("local Kubernetes cluster: %v", clusterErr)
	}
	return cluster
}

// stopCluster stops the cluster if the tests started it.
func stopCluster() {
	if clusterStarted {
		_ = asRoot(filepath.Join(repoRoot(), "scripts", "k8s", "down.sh")).Run()
		clusterStarted = false
	}
}

// importWorkload builds the runtime tests' workload as a one-layer image
// (no Docker, no registry) and imports it into the cluster's containerd as
// workloadImage.
func (c *k8sCluster) importWorkload() error {
	dir, err := os.MkdirTemp("", "gpunet-k8s-image")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rootfs := filepath.Join(dir, "rootfs")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(rootfs, "workload"), "./provider/runtime/testdata/workload")
	build.Dir, build.Env = repoRoot(), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return errorf("build the workload: %v\n%s", err, out)
	}
	tar := filepath.Join(dir, "workload.tar")
	if out, err := exec.Command(filepath.Join(repoRoot(), "scripts", "k8s", "mkoci.sh"), rootfs, "docker.io/"+workloadImage, tar, "/workload").CombinedOutput(); err != nil {
		return errorf("mkoci: %v\n%s", err, out)
	}
	if out, err := asRoot("ctr", "-a", filepath.Join(c.state, "containerd", "containerd.sock"), "-n", "k8s.io", "images", "import", tar).CombinedOutput(); err != nil {
		return errorf("import the workload image: %v\n%s", err, out)
	}
	return nil
}

// startKubeProvider runs a provider daemon on the cluster: runtime.kind
// kubernetes, as the gpunet-provider user, images the node has only.
func startKubeProvider(t *testing.T, nw *localnet.Network, c *k8sCluster) *providerProc {
	t.Helper()
	p := startProviderWith(t, nw, kubeProviderOpts(c, nil))
	t.Cleanup(func() {
		c.removeLeases(t, p.addr)
		// The README's RBAC is all the daemon needs: nothing it asked the
		// cluster for was refused.
		for _, line := range strings.Split(p.log(), "\n") {
			if strings.Contains(line, "forbidden") {
				t.Errorf("the cluster refused the daemon something its RBAC should allow:\n%s", line)
			}
			if os.Getenv("GPUNET_E2E_DAEMON_LOG") != "" && (strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) {
				t.Log(line)
			}
		}
	})
	return p
}

// kubeProviderOpts are the test provider's on the cluster, with more
// edits of provider.yaml.
func kubeProviderOpts(c *k8sCluster, more map[string]string) providerOpts {
	edits := map[string]string{
		"kind: docker":                    "kind: kubernetes",
		`kubeconfig: ""`:                  "kubeconfig: " + c.providerKubeconfig,
		`node_host: ""`:                   "node_host: " + c.nodeIP,
		"image_pull_policy: IfNotPresent": "image_pull_policy: Never",
		"deploy_timeout: 5m":              "deploy_timeout: 2m",
	}
	for k, v := range more {
		edits[k] = v
	}
	return providerOpts{Key: "provider", GPUPrice: "2000000000", Kube: true, Edits: edits}
}

// removeLeases deletes what a test's provider left on the cluster.
func (c *k8sCluster) removeLeases(t *testing.T, provider string) {
	nss, err := c.admin.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelProvider + "=" + provider})
	if err != nil {
		t.Logf("list namespaces: %v", err)
		return
	}
	for _, ns := range nss.Items {
		_ = c.admin.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	}
}

// leaseNamespace is the namespace of a deployment's lease, or nil.
func (c *k8sCluster) leaseNamespace(t *testing.T, provider, owner string, dseq uint64) *corev1.Namespace {
	t.Helper()
	sel := strings.Join([]string{kube.LabelProvider + "=" + provider, kube.LabelOwner + "=" + owner, kube.LabelDSeq + "=" + uitoa(dseq)}, ",")
	nss, err := c.admin.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatal(err)
	}
	for i := range nss.Items {
		if nss.Items[i].DeletionTimestamp == nil {
			return &nss.Items[i]
		}
	}
	return nil
}

// waitNamespaceGone waits until the lease has no namespace left, not even
// one being deleted.
func (c *k8sCluster) waitNamespaceGone(t *testing.T, provider, owner string, dseq uint64, within time.Duration) {
	t.Helper()
	sel := strings.Join([]string{kube.LabelProvider + "=" + provider, kube.LabelOwner + "=" + owner, kube.LabelDSeq + "=" + uitoa(dseq)}, ",")
	deadline := time.Now().Add(within)
	for {
		nss, err := c.admin.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{LabelSelector: sel})
		if err == nil && len(nss.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the namespace of deployment %d is still there after %s: %v %+v", dseq, within, err, nss)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// pods are a namespace's pods.
func (c *k8sCluster) pods(t *testing.T, ns string) []corev1.Pod {
	t.Helper()
	list, err := c.admin.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// setGPUs advertises n GPUs of a product on the node, as the NVIDIA
// device plugin and GPU feature discovery would; product "" removes the
// labels and the resource.
func (c *k8sCluster) setGPUs(t *testing.T, product string, memMiB string, n int) {
	t.Helper()
	ctx := context.Background()
	var labels string
	if product != "" {
		labels = `{"metadata":{"labels":{"` + kube.LabelGPUProduct + `":"` + product + `","` + kube.LabelGPUMemory + `":"` + memMiB + `"}}}`
	} else {
		labels = `{"metadata":{"labels":{"` + kube.LabelGPUProduct + `":null,"` + kube.LabelGPUMemory + `":null}}}`
	}
	if _, err := c.admin.CoreV1().Nodes().Patch(ctx, "localhost", types.StrategicMergePatchType, []byte(labels), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	capacity, _ := json.Marshal(map[string]any{"status": map[string]any{
		"capacity":    map[string]any{string(kube.ResourceGPU): nullOr(product, n)},
		"allocatable": map[string]any{string(kube.ResourceGPU): nullOr(product, n)},
	}})
	if _, err := c.admin.CoreV1().Nodes().Patch(ctx, "localhost", types.StrategicMergePatchType, capacity, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }

func nullOr(product string, n int) any {
	if product == "" {
		return nil
	}
	return uitoa(uint64(n))
}
