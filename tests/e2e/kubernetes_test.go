package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gpunet/gpunet/provider/runtime/kube"
	"github.com/gpunet/gpunet/testutil/localnet"
)

// kubeSDL is workloadSDL's one service "app" with 1Gi of storage: a job
// (restart never) or a service, with its expose list and a GPU of a model.
func kubeSDL(args string, job bool, expose, gpuModel string) string {
	s := workloadSDL("1Gi", gpuModel, svcDef{"app", args, expose})
	if job {
		s = strings.Replace(s, "    args: ["+args+"]\n", "    args: ["+args+"]\n    restart: never\n", 1)
	}
	return s
}

// awaitLeasePod waits for the deployment's lease namespace and its pod in
// the phase wanted.
func awaitLeasePod(t *testing.T, c *k8sCluster, provider, owner string, dseq uint64, phase corev1.PodPhase, within time.Duration) (*corev1.Namespace, corev1.Pod) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ns := c.leaseNamespace(t, provider, owner, dseq); ns != nil {
			for _, p := range c.pods(t, ns.Name) {
				if p.Status.Phase == phase && p.DeletionTimestamp == nil {
					return ns, p
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s pod of deployment %d on the cluster within %s", phase, dseq, within)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// TestKubernetes runs the provider daemon on the local Kubernetes cluster
// (scripts/k8s; started for these tests when none is up, and stopped after
// them so that the rest of the suite runs on a host without it).
func TestKubernetes(t *testing.T) {
	c := ensureCluster(t)
	t.Cleanup(stopCluster)
	t.Run("job rents, runs as a Job and settles", func(t *testing.T) { testKubernetesJob(t, c) })
	t.Run("service on a node port, daemon crash, close while down", func(t *testing.T) { testKubernetesService(t, c) })
	t.Run("GPU unit scheduled only where the model is", func(t *testing.T) { testKubernetesGPU(t, c) })
	t.Run("persistent volume kept across updates and a replaced pod", func(t *testing.T) { testKubernetesVolume(t, c) })
}

// testKubernetesJob: a provider whose daemon runs on a
// Kubernetes cluster rents a job to a tenant. The lease is a namespace of
// its own, labelled with the lease, holding a Job whose pod has the SDL's
// CPU, memory and storage as requests and limits and runs unprivileged
// with every capability dropped, a ResourceQuota of exactly the order and
// a NetworkPolicy keeping other namespaces out. The tenant reads its logs
// through the provider, the lease closes as workload_completed, escrow
// settles to the ugpn, and the namespace goes.
func testKubernetesJob(t *testing.T, c *k8sCluster) {
	nw := startNetwork(t, 1)
	prov := startKubeProvider(t, nw, c)
	tenant := nw.Keys["tenant"]

	done := make(chan deployed, 1)
	go func() {
		res, out, err := deploy(t, nw, writeSDL(t, kubeSDL(`"-print", "hello from the job", "-count", "12", "-interval", "1s"`, true, "", "")), "--deposit", "5000000ugpn", "--follow", "--wait", "120s")
		done <- deployed{res, out, err}
	}()
	order, err := awaitOpenOrder(nw, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	dseq, _ := strconv.ParseUint(order.Dseq, 10, 64)
	ns, pod := awaitLeasePod(t, c, prov.addr, tenant, dseq, corev1.PodRunning, 90*time.Second)

	if ns.Labels[kube.LabelProvider] != prov.addr || ns.Labels[kube.LabelOwner] != tenant || ns.Annotations[kube.AnnotationLease] != fmt.Sprintf("%s/%d/1/1", tenant, dseq) ||
		ns.Labels["pod-security.kubernetes.io/enforce"] != "baseline" {
		t.Errorf("lease namespace %s: labels %v annotations %v", ns.Name, ns.Labels, ns.Annotations)
	}
	ctx := context.Background()
	jobs, err := c.admin.BatchV1().Jobs(ns.Name).List(ctx, metav1.ListOptions{})
	if err != nil || len(jobs.Items) != 1 || jobs.Items[0].Name != "app" || *jobs.Items[0].Spec.BackoffLimit != 0 {
		t.Fatalf("jobs in %s: %v %+v, want the one job app, never retried", ns.Name, err, jobs)
	}
	ctr := pod.Spec.Containers[0]
	req, lim := ctr.Resources.Requests, ctr.Resources.Limits
	if req.Cpu().MilliValue() != 500 || lim.Cpu().MilliValue() != 500 || req.Memory().Value() != 256<<20 || lim.Memory().Value() != 256<<20 ||
		lim.StorageEphemeral().Value() != 1<<30 {
		t.Errorf("pod resources: requests %v limits %v, want 500m CPU, 256Mi memory, 1Gi ephemeral storage", req, lim)
	}
	sc := ctr.SecurityContext
	if sc == nil || sc.Privileged == nil || *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
		t.Errorf("pod security: %+v, service-account token %v", sc, pod.Spec.AutomountServiceAccountToken)
	}
	quota, err := c.admin.CoreV1().ResourceQuotas(ns.Name).Get(ctx, "lease", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := quota.Spec.Hard; h.Name("requests.cpu", "").MilliValue() != 500 || h.Name("limits.cpu", "").MilliValue() != 500 ||
		h.Name("requests.memory", "").Value() != 256<<20 || h.Name("requests.nvidia.com/gpu", "").Value() != 0 {
		t.Errorf("quota %v: want the order's 500m CPU, 256Mi memory and no GPU", h)
	}
	pol, err := c.admin.NetworkingV1().NetworkPolicies(ns.Name).Get(ctx, "lease", metav1.GetOptions{})
	if err != nil || len(pol.Spec.Ingress) != 1 || len(pol.Spec.Ingress[0].From) != 1 || pol.Spec.Ingress[0].From[0].NamespaceSelector != nil || len(pol.Spec.PolicyTypes) != 2 {
		t.Errorf("network policy: %v %+v, want ingress from the lease's own pods only, egress restricted", err, pol)
	}

	logs := ""
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs, "[app-0] hello from the job"); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("lease logs: %v\n%s", err, logs)
		}
		logs, err = tenantCLI(t, nw, "lease", "logs", order.Dseq)
	}

	var d deployed
	select {
	case d = <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("the job did not end")
	}
	if d.err != nil || len(d.res.Closed) != 1 || d.res.Closed[0].Reason != "workload_completed" || d.res.Settlement == nil {
		t.Fatalf("deploy: %v closed %+v\n%s", d.err, d.res.Closed, d.out)
	}
	s := d.res.Settlement
	paid, earned, take, refunded := mustInt(t, s.TenantPaid.Amount), mustInt(t, s.ProviderEarned.Amount), mustInt(t, s.StakersTake.Amount), mustInt(t, s.Refunded.Amount)
	if paid <= 0 || earned+take != paid || paid+refunded != 5_000_000 {
		t.Errorf("settlement: paid %d = earned %d + take %d? paid + refunded %d = the 5000000 deposit?", paid, earned, take, refunded)
	}
	prov.waitLog(10*time.Second, "lease closed", fmt.Sprintf("/%d/1/1", dseq), "reason=workload_completed")
	c.waitNamespaceGone(t, prov.addr, tenant, dseq, 60*time.Second)
	for _, m := range []string{"escrow", "market"} {
		if b := moduleBalance(t, nw, m); b != 0 {
			t.Errorf("%s module holds %d ugpn after the only deployment closed", m, b)
		}
	}

	// A job that exits with an error closes as the workload's failure; an
	// image the cluster does not have (pull policy Never) as unavailable.
	failed, out, _ := deploy(t, nw, writeSDL(t, kubeSDL(`"-print", "giving up", "-exit", "3"`, true, "", "")), "--deposit", "5000000ugpn", "--follow", "--wait", "120s")
	if len(failed.Closed) != 1 || failed.Closed[0].Reason != "workload_failed" {
		t.Fatalf("failing job: closed %+v, want workload_failed\n%s", failed.Closed, out)
	}
	c.waitNamespaceGone(t, prov.addr, tenant, failed.DSeq, 60*time.Second)
	missing, out, err := deploy(t, nw, writeSDL(t, strings.Replace(kubeSDL(`"-print", "x"`, true, "", ""), workloadImage, "gpunet/no-such-image:1", 1)), "--deposit", "5000000ugpn", "--wait", "30s")
	if err == nil {
		t.Fatalf("a missing image deployed:\n%s", out)
	}
	prov.waitLog(30*time.Second, "lease closed", fmt.Sprintf("/%d/1/1", missing.DSeq), "reason=image_unavailable")
	c.waitNamespaceGone(t, prov.addr, tenant, missing.DSeq, 60*time.Second)
}

// leaseStatusJSON is `gpunetd lease status -o json`'s one lease.
type leaseStatusJSON struct {
	State    string   `json:"state"`
	URIs     []string `json:"uris"`
	Replicas []struct {
		Service string `json:"service"`
		State   string `json:"state"`
		Usage   *struct {
			MemoryUsedBytes  uint64 `json:"memory_used_bytes"`
			MemoryLimitBytes uint64 `json:"memory_limit_bytes"`
		} `json:"usage"`
		Ports []struct {
			Port     int    `json:"port"`
			Proto    string `json:"proto"`
			HostIP   string `json:"host_ip"`
			HostPort int    `json:"host_port"`
		} `json:"ports"`
	} `json:"replicas"`
}

func kubeLeaseStatus(t *testing.T, nw *localnet.Network, dseq uint64) (leaseStatusJSON, string) {
	t.Helper()
	out, err := tenantCLI(t, nw, "lease", "status", strconv.FormatUint(dseq, 10), "--output", "json")
	var all []leaseStatusJSON
	if err != nil || json.Unmarshal([]byte(localnet.LastJSON(out)), &all) != nil || len(all) != 1 {
		return leaseStatusJSON{}, out
	}
	return all[0], out
}

// testKubernetesService: a service with a global port
// runs as a Deployment behind a NodePort service that lease status shows
// and that answers on the node; lease logs work. Killing the daemon leaves
// the pod untouched and the restarted daemon adopts it; a lease the
// tenant closes while the daemon is down has its namespace removed when
// the daemon comes back.
func testKubernetesService(t *testing.T, c *k8sCluster) {
	nw := startNetwork(t, 1)
	prov := startKubeProvider(t, nw, c)
	tenant := nw.Keys["tenant"]
	expose := "      - port: 8080\n        as: 8080\n        to:\n          - global: true\n"
	res, out, err := deploy(t, nw, writeSDL(t, kubeSDL(`"-http", ":8080", "-print", "web up", "-sleep", "24h"`, false, expose, "")), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	ns := c.leaseNamespace(t, prov.addr, tenant, res.DSeq)
	if ns == nil {
		t.Fatal("no lease namespace")
	}
	ctx := context.Background()
	if ds, err := c.admin.AppsV1().Deployments(ns.Name).List(ctx, metav1.ListOptions{}); err != nil || len(ds.Items) != 1 || ds.Items[0].Name != "app" {
		t.Fatalf("deployments: %v %+v", err, ds)
	}

	var st leaseStatusJSON
	var raw string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		st, raw = kubeLeaseStatus(t, nw, res.DSeq)
		if st.State == "active" && len(st.Replicas) == 1 && st.Replicas[0].State == "running" && len(st.Replicas[0].Ports) == 1 &&
			st.Replicas[0].Usage != nil && st.Replicas[0].Usage.MemoryUsedBytes > 0 && st.Replicas[0].Usage.MemoryLimitBytes == 256<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease status: want active, one running replica with its port and its usage (from the kubelet) against its 256Mi\n%s", raw)
		}
	}
	port := st.Replicas[0].Ports[0]
	if port.Port != 8080 || port.HostIP != c.nodeIP || port.HostPort < 30000 || port.HostPort > 32767 {
		t.Fatalf("port %+v: want 8080 at a node port of %s", port, c.nodeIP)
	}
	url := fmt.Sprintf("http://%s:%d/", port.HostIP, port.HostPort)
	get := func() string {
		hc := &http.Client{Timeout: 3 * time.Second}
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			r, err := hc.Get(url)
			if err == nil {
				body, _ := io.ReadAll(r.Body)
				r.Body.Close()
				return string(body)
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %v", url, err)
			}
		}
	}
	if body := get(); !strings.HasPrefix(body, "hello from app-") {
		t.Fatalf("GET %s: %q, want the workload's answer", url, body)
	}
	logs, err := tenantCLI(t, nw, "lease", "logs", strconv.FormatUint(res.DSeq, 10))
	if err != nil || !strings.Contains(logs, "[app-0] web up") {
		t.Fatalf("lease logs: %v\n%s", err, logs)
	}

	// A shell through the provider: the command's output, its exit code
	// and stdin; the lease's events come from the cluster's pods.
	shell := func(stdin string, args ...string) (string, int) { return leaseShell(t, nw, res.DSeq, stdin, args...) }
	if out, code := shell("", "--", "/workload", "-print", "hello from inside", "-exit", "7"); code != 7 || !strings.Contains(out, "hello from inside") {
		t.Fatalf("shell: exit %d, output %q; want 7 and the command's output", code, out)
	}
	if out, code := shell("one\ntwo\n", "--stdin", "--", "/workload", "-echo-stdin"); code != 0 || !strings.Contains(out, "ONE\nTWO\nstdin ended") {
		t.Fatalf("shell with stdin: exit %d, output %q", code, out)
	}
	events, err := tenantCLI(t, nw, "lease", "events", strconv.FormatUint(res.DSeq, 10))
	if err != nil || !strings.Contains(events, "running: every replica started") {
		t.Errorf("lease events: %v\n%s", err, events)
	}

	pods := c.pods(t, ns.Name)
	if len(pods) != 1 {
		t.Fatalf("%d pods, want 1", len(pods))
	}
	before := pods[0]
	prov.stop(syscall.SIGKILL)
	time.Sleep(3 * time.Second)
	hRestart := mustHeight(t, nw)
	prov.start()
	prov.waitLog(30*time.Second, "containers adopted", fmt.Sprintf("/%d/1/1", res.DSeq))
	after := c.pods(t, ns.Name)
	if len(after) != 1 || after[0].UID != before.UID || after[0].Status.Phase != corev1.PodRunning || after[0].Status.ContainerStatuses[0].RestartCount != 0 {
		t.Fatalf("the pod changed across the daemon's crash:\nbefore %s %s\nafter %+v", before.UID, before.Status.Phase, after)
	}
	if v := awaitAttestationAfter(t, nw, prov.addr, hRestart, 30*time.Second); v.Attestation.ActiveLeases < 1 || len(v.Down) != 0 {
		t.Errorf("first attestation after the restart: %+v; want the adopted lease attested running", v)
	}
	if body := get(); !strings.HasPrefix(body, "hello from "+before.Name) {
		t.Errorf("after the restart GET %s: %q, want the same pod %s", url, body, before.Name)
	}

	// Closed while the daemon is down: its namespace goes on restart.
	prov.stop(syscall.SIGKILL)
	if out, err := tenantCLI(t, nw, "tx", "market", "close-deployment", strconv.FormatUint(res.DSeq, 10), "--fees", "10000ugpn", "--gas", "400000", "--yes"); err != nil {
		t.Fatalf("close: %v\n%s", err, out)
	}
	waitBlocks(t, nw, 2)
	if c.leaseNamespace(t, prov.addr, tenant, res.DSeq) == nil {
		t.Fatal("the namespace went while the daemon was down: nothing else should touch it")
	}
	prov.start()
	prov.waitLog(30*time.Second, "removing containers of a lease closed while away", fmt.Sprintf("/%d/1/1", res.DSeq))
	c.waitNamespaceGone(t, prov.addr, tenant, res.DSeq, 60*time.Second)
}

// testKubernetesGPU: the node advertises
// one GPU (nvidia.com/gpu capacity and GPU feature discovery's product
// label, patched on: there is no GPU here). The provider's inventory and
// chain record show it as an h100; a job renting it requests
// nvidia.com/gpu with node affinity on that product and runs on the node.
// When the node has no free GPU the same order's pod is not scheduled.
func testKubernetesGPU(t *testing.T, c *k8sCluster) {
	const product = "NVIDIA-H100-80GB-HBM3"
	c.setGPUs(t, product, "81559", 1)
	t.Cleanup(func() { c.setGPUs(t, "", "", 0) })
	nw := startNetwork(t, 1)
	prov := startKubeProvider(t, nw, c)
	tenant := nw.Keys["tenant"]
	if prov.gpuModel != "h100" || len(prov.inv.GPUs) != 1 || prov.inv.GPUs[0].MemoryMiB != 81559 {
		t.Fatalf("inventory %+v: want the node's one h100 of 81559 MiB", prov.inv)
	}
	gpu := "h100"
	done := make(chan deployed, 1)
	go func() {
		res, out, err := deploy(t, nw, writeSDL(t, kubeSDL(`"-print", "gpu job", "-sleep", "6s"`, true, "", gpu)), "--deposit", "5000000ugpn", "--follow", "--wait", "120s")
		done <- deployed{res, out, err}
	}()
	order, err := awaitOpenOrder(nw, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	dseq, _ := strconv.ParseUint(order.Dseq, 10, 64)
	_, pod := awaitLeasePod(t, c, prov.addr, tenant, dseq, corev1.PodRunning, 90*time.Second)
	if q := pod.Spec.Containers[0].Resources.Limits[kube.ResourceGPU]; q.Value() != 1 {
		t.Errorf("pod limits %v: want nvidia.com/gpu 1", pod.Spec.Containers[0].Resources.Limits)
	}
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		t.Fatalf("pod affinity %+v: want required node affinity on the GPU product", aff)
	}
	terms := aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	// Held to the product and the node of the device the bid reserved.
	if len(terms) != 1 || len(terms[0].MatchExpressions) != 2 || terms[0].MatchExpressions[0].Key != kube.LabelGPUProduct ||
		terms[0].MatchExpressions[0].Operator != corev1.NodeSelectorOpIn || strings.Join(terms[0].MatchExpressions[0].Values, ",") != product ||
		terms[0].MatchExpressions[1].Key != corev1.LabelHostname || strings.Join(terms[0].MatchExpressions[1].Values, ",") != "localhost" {
		t.Errorf("node affinity %+v: want %s In [%s] on node localhost", terms, kube.LabelGPUProduct, product)
	}
	if pod.Spec.NodeName != "localhost" {
		t.Errorf("GPU pod on node %q", pod.Spec.NodeName)
	}
	var d deployed
	select {
	case d = <-done:
	case <-time.After(120 * time.Second):
		t.Fatal("the GPU job did not end")
	}
	if d.err != nil || len(d.res.Closed) != 1 || d.res.Closed[0].Reason != "workload_completed" {
		t.Fatalf("GPU job: %v closed %+v\n%s", d.err, d.res.Closed, d.out)
	}

	// The node's GPU is gone (capacity 0, the label stays): the daemon
	// still bids from its inventory, but the scheduler places the pod
	// nowhere.
	c.setGPUs(t, product, "81559", 0)
	go func() {
		res, out, err := deploy(t, nw, writeSDL(t, kubeSDL(`"-print", "gpu job", "-sleep", "6s"`, true, "", gpu)), "--deposit", "5000000ugpn", "--wait", "20s")
		done <- deployed{res, out, err}
	}()
	order, err = awaitOpenOrder(nw, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	dseq, _ = strconv.ParseUint(order.Dseq, 10, 64)
	_, pod = awaitLeasePod(t, c, prov.addr, tenant, dseq, corev1.PodPending, 60*time.Second)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if pods := c.pods(t, pod.Namespace); len(pods) == 1 && pods[0].Spec.NodeName == "" && podUnschedulable(pods[0]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the GPU pod with no GPU free was not reported unschedulable: %+v", c.pods(t, pod.Namespace))
		}
	}
	if out, err := tenantCLI(t, nw, "tx", "market", "close-deployment", order.Dseq, "--fees", "10000ugpn", "--gas", "400000", "--yes"); err != nil {
		t.Fatalf("close: %v\n%s", err, out)
	}
	<-done
	c.waitNamespaceGone(t, prov.addr, tenant, dseq, 60*time.Second)
}

func podUnschedulable(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && strings.Contains(c.Message, "nvidia.com/gpu") {
			return true
		}
	}
	return false
}

// testKubernetesVolume: a service with a persistent volume is a
// StatefulSet whose replica claims the volume from the cluster's
// StorageClass the provider maps the class to (a static PV here: the local
// cluster has no provisioner). A file written to it survives an update in
// place, a crashing update (the old version comes back, the tenant hears
// why) and its pod being deleted; the claim goes with the lease.
func testKubernetesVolume(t *testing.T, c *k8sCluster) {
	ctx := context.Background()
	pvName := fmt.Sprintf("gpunet-e2e-%d", time.Now().UnixNano())
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvName},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "gpunet-e2e",
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: filepath.Join(c.state, "pv", pvName), Type: ptrTo(corev1.HostPathDirectoryOrCreate),
			}},
		},
	}
	if _, err := c.admin.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.admin.CoreV1().PersistentVolumes().Delete(ctx, pvName, metav1.DeleteOptions{}) })

	nw := startNetwork(t, 1)
	prov := startProviderWith(t, nw, kubeProviderOpts(c, map[string]string{
		"storage_classes: {}": "storage_classes: {beta2: {size: 1Gi, kubernetes_class: gpunet-e2e}}",
	}))
	t.Cleanup(func() { c.removeLeases(t, prov.addr) })
	tenant := nw.Keys["tenant"]
	version := func(args string) string {
		s := strings.Replace(kubeSDL(args, false, "", ""), "        storage:\n          size: 1Gi",
			"        storage:\n          - size: 1Gi\n          - name: data\n            size: 64Mi\n            attributes: {persistent: true, class: beta2}", 1)
		return strings.Replace(s, "    args: ["+args+"]", "    args: ["+args+"]\n    params:\n      storage:\n        data: {mount: /data}", 1)
	}
	res, out, err := deploy(t, nw, writeSDL(t, version(`"-print", "version one", "-sleep", "24h"`)), "--deposit", "50000000ugpn")
	if err != nil {
		t.Fatalf("deploy v1: %v\n%s", err, out)
	}
	dseq := strconv.FormatUint(res.DSeq, 10)
	ns := c.leaseNamespace(t, prov.addr, tenant, res.DSeq)
	if ns == nil {
		t.Fatal("no lease namespace")
	}
	sts, err := c.admin.AppsV1().StatefulSets(ns.Name).List(ctx, metav1.ListOptions{})
	if err != nil || len(sts.Items) != 1 {
		t.Fatalf("stateful sets: %v %+v", err, sts)
	}
	pvcs, err := c.admin.CoreV1().PersistentVolumeClaims(ns.Name).List(ctx, metav1.ListOptions{})
	if err != nil || len(pvcs.Items) != 1 || pvcs.Items[0].Spec.VolumeName != pvName || *pvcs.Items[0].Spec.StorageClassName != "gpunet-e2e" {
		t.Fatalf("claims: %v %+v, want one bound to %s", err, pvcs, pvName)
	}
	inApp := func(args ...string) string {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
			out, code := leaseShell(t, nw, res.DSeq, "", append([]string{"--", "/workload"}, args...)...)
			if code == 0 {
				return out
			}
			if time.Now().After(deadline) {
				t.Fatalf("lease shell %v: exit %d\n%s", args, code, out)
			}
		}
	}
	logs := func() string {
		t.Helper()
		out, err := tenantCLI(t, nw, "lease", "logs", dseq)
		if err != nil {
			t.Fatalf("lease logs: %v\n%s", err, out)
		}
		return out
	}
	if said := inApp("-write-mib", "8", "-write-path", "/data/keep"); !strings.Contains(said, "wrote 8 MiB") {
		t.Fatalf("write to the volume: %s", said)
	}

	if _, out, err := deploy(t, nw, writeSDL(t, version(`"-print", "version two", "-sleep", "24h"`)), "--update", dseq); err != nil {
		t.Fatalf("deploy --update v2: %v\n%s", err, out)
	}
	if l := logs(); !strings.Contains(l, "version two") || strings.Contains(l, "version one") {
		t.Fatalf("logs after the update:\n%s", l)
	}
	if said := inApp("-stat", "/data/keep"); !strings.Contains(said, "size=8388608") {
		t.Fatalf("the volume's file after the update: %s", said)
	}

	_, out, err = deploy(t, nw, writeSDL(t, version(`"-print", "version three is broken", "-exit", "3"`)), "--update", dseq)
	if err == nil || !strings.Contains(out, "did not take the new version") || !strings.Contains(out, "version three is broken") {
		t.Fatalf("a crashing v3: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
		if l := logs(); strings.Contains(l, "version two") && !strings.Contains(l, "version three") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs after the failed update:\n%s", logs())
		}
	}

	pods := c.pods(t, ns.Name)
	if len(pods) != 1 {
		t.Fatalf("%d pods", len(pods))
	}
	if err := c.admin.CoreV1().Pods(ns.Name).Delete(ctx, pods[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if ps := c.pods(t, ns.Name); len(ps) == 1 && ps[0].UID != pods[0].UID && ps[0].Status.Phase == corev1.PodRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deleted pod was not replaced: %+v", c.pods(t, ns.Name))
		}
	}
	if said := inApp("-stat", "/data/keep"); !strings.Contains(said, "size=8388608") {
		t.Fatalf("the volume's file after its pod was replaced: %s", said)
	}

	if out, err := tenantCLI(t, nw, "tx", "market", "close-deployment", dseq, "--fees", "10000ugpn", "--gas", "400000", "--yes"); err != nil {
		t.Fatalf("close: %v\n%s", err, out)
	}
	c.waitNamespaceGone(t, prov.addr, tenant, res.DSeq, 60*time.Second)
	got, err := c.admin.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	if err != nil || got.Status.Phase != corev1.VolumeReleased {
		t.Errorf("the volume after the lease: %v %+v, want released by its claim", err, got.Status)
	}
}

func ptrTo[T any](v T) *T { return &v }

// leaseShell runs `gpunetd lease shell` as the tenant: its output and exit
// code.
func leaseShell(t *testing.T, nw *localnet.Network, dseq uint64, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(gpunetd, append([]string{"lease", "shell", strconv.FormatUint(dseq, 10), "--from", "tenant", "--keyring-backend", "test",
		"--chain-id", nw.Config.ChainID, "--home", nw.KeyringHome(), "--node", nw.Nodes[0].RPCAddr()}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(b), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(b), 0
}
