package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/gpunet/gpunet/provider/inventory"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

const testProvider = "gpunet1provider"

var testLease = runtime.LeaseRef{Order: markettypes.OrderID{Owner: "gpunet1tenant", Dseq: 42, Gseq: 1, Oseq: 2}, Provider: testProvider}

func testRuntime() *Runtime {
	return &Runtime{opts: Options{Provider: testProvider, NodeHost: "192.0.2.2", PullPolicy: corev1.PullIfNotPresent}}
}

func TestObjectName(t *testing.T) {
	for _, c := range []struct{ in, want string }{{"app", "app"}, {"web-2", "web-2"}} {
		if got := objectName(c.in); got != c.want {
			t.Errorf("objectName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	seen := map[string]string{}
	for _, in := range []string{"a_b", "a-b", "A-B", "", "__", "1web", "web--global", "web__global", strings.Repeat("x", 80), strings.Repeat("x", 81)} {
		got := objectName(in)
		if len(got) > 48 || strings.Trim(got, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || got[0] < 'a' || got[0] > 'z' || strings.HasSuffix(got, "-") ||
			strings.Contains(got, "--") {
			t.Errorf("objectName(%q) = %q: not a DNS-1035 label of at most 48 characters without \"--\"", in, got)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("objectName(%q) = objectName(%q) = %q", in, prev, got)
		}
		seen[got] = in
	}
}

func TestLeaseLabelsRoundTrip(t *testing.T) {
	labels := leaseLabels(testProvider, testLease)
	for k, v := range labels {
		if len(v) > 63 || strings.ContainsAny(v, "/ ") {
			t.Errorf("label %s=%q is not a label value", k, v)
		}
	}
	l, ok := leaseOf(labels, map[string]string{AnnotationLease: testLease.Order.Name()})
	if !ok || l != testLease {
		t.Fatalf("leaseOf = %+v, %v; want %+v", l, ok, testLease)
	}
	if _, ok := leaseOf(labels, map[string]string{AnnotationLease: "gpunet1tenant/42/1/3"}); ok {
		t.Error("labels and an annotation that disagree read as a lease")
	}
	if namespace(testProvider, testLease) == namespace("gpunet1other", testLease) {
		t.Error("two providers' namespaces for one lease collide")
	}
}

func testGroup() sdl.ManifestGroup {
	return sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{
		{
			Name: "web", Image: "ghcr.io/acme/web:1", Command: []string{"/web"}, Args: []string{"-port", "8080"}, Env: []string{"MODE=prod", "EMPTY="},
			Count: 2, Restart: "always",
			Resources: sdl.ManifestResource{CPUMillis: 500, MemoryBytes: 256 << 20, StorageBytes: 1 << 30},
			Expose:    []sdl.ManifestExpose{{Port: 8080, As: 80, Proto: "tcp", Global: true}, {Port: 9000, As: 9000, Proto: "udp"}},
			Mounts:    []sdl.ManifestMount{{Volume: "scratch", Path: "/dev/shm", Class: sdl.ClassRAM, SizeBytes: 64 << 20}},
		},
		{
			Name: "trainer", Image: "registry.example.com/acme/train:2", Count: 1, Restart: "always",
			Resources:   sdl.ManifestResource{CPUMillis: 4000, MemoryBytes: 16 << 30, GPUUnits: 2, GPUModels: []string{"h100"}, GPUMemoryMiB: 81559},
			Credentials: &sdl.Credentials{Host: "registry.example.com", Username: "acme", Password: "s3cret"},
		},
	}}
}

var testProducts = gpuProducts{"h100": {"NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe"}, "a100": {"NVIDIA-A100-SXM4-80GB"}}

// TestBuildLease: a group becomes a namespace with its quota, policies,
// services, secrets and workloads, each replica confined and sized as the
// order says.
func TestBuildLease(t *testing.T) {
	r := testRuntime()
	objs, err := r.buildLease(testLease, testGroup(), nil, clusterView{products: testProducts, nodeIPs: []string{"203.0.113.7", "10.0.0.5"}})
	if err != nil {
		t.Fatal(err)
	}
	ns := objs.Namespace
	if ns.Name != namespace(testProvider, testLease) || ns.Labels["pod-security.kubernetes.io/enforce"] != "baseline" || ns.Labels[LabelProvider] != testProvider {
		t.Errorf("namespace %+v", ns.ObjectMeta)
	}
	if strings.Contains(ns.Annotations[AnnotationGroup], "s3cret") {
		t.Error("the namespace's group annotation holds a registry password")
	}
	if len(objs.Deployments) != 2 || len(objs.Jobs) != 0 {
		t.Fatalf("%d deployments, %d jobs; want 2 and 0", len(objs.Deployments), len(objs.Jobs))
	}
	web, trainer := objs.Deployments[0], objs.Deployments[1]
	if *web.Spec.Replicas != 2 || web.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || web.Name != "web" {
		t.Errorf("web deployment %+v", web.Spec)
	}
	pod := web.Spec.Template.Spec
	c := pod.Containers[0]
	mem := resource.MustParse("256Mi") // the SDL counts the 64Mi RAM volume in
	if c.Resources.Requests.Cpu().MilliValue() != 500 || !c.Resources.Limits.Memory().Equal(mem) || !c.Resources.Requests.Memory().Equal(mem) ||
		c.Resources.Limits.StorageEphemeral().Value() != 1<<30 {
		t.Errorf("web resources %+v", c.Resources)
	}
	sc := c.SecurityContext
	if *sc.Privileged || *sc.AllowPrivilegeEscalation || sc.Capabilities.Drop[0] != "ALL" || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
		*pod.AutomountServiceAccountToken || *pod.EnableServiceLinks || pod.HostNetwork || pod.HostPID {
		t.Errorf("web pod not confined: %+v %+v", sc, pod)
	}
	if strings.Join(c.Command, " ") != "/web" || strings.Join(c.Args, " ") != "-port 8080" || len(c.Env) != 3 || c.Env[0].Name != "MODE" || c.Env[0].Value != "prod" || c.Env[1].Value != "" ||
		c.Env[2].Name != "NVIDIA_VISIBLE_DEVICES" || c.Env[2].Value != "void" {
		t.Errorf("web process %v %v %v: want the SDL's, and no GPU visible to a replica that rents none", c.Command, c.Args, c.Env)
	}
	if c.ImagePullPolicy != corev1.PullIfNotPresent || trainer.Spec.Template.Spec.Containers[0].ImagePullPolicy != corev1.PullAlways {
		t.Errorf("pull policies %s, %s: a private image is pulled with its credentials every time", c.ImagePullPolicy, trainer.Spec.Template.Spec.Containers[0].ImagePullPolicy)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].EmptyDir == nil || pod.Volumes[0].EmptyDir.Medium != corev1.StorageMediumMemory || c.VolumeMounts[0].MountPath != "/dev/shm" {
		t.Errorf("web RAM volume %+v %+v", pod.Volumes, c.VolumeMounts)
	}
	if pod.Affinity != nil || len(pod.Tolerations) != 0 {
		t.Errorf("a CPU service has GPU placement: %+v", pod.Affinity)
	}

	tp := trainer.Spec.Template.Spec
	if q := tp.Containers[0].Resources.Limits[ResourceGPU]; q.Value() != 2 {
		t.Errorf("trainer GPU limit %v", tp.Containers[0].Resources.Limits)
	}
	expr := tp.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions
	if len(expr) != 2 || expr[0].Key != LabelGPUProduct || strings.Join(expr[0].Values, ",") != "NVIDIA-H100-80GB-HBM3,NVIDIA-H100-PCIe" ||
		expr[1].Key != LabelGPUMemory || expr[1].Operator != corev1.NodeSelectorOpGt || expr[1].Values[0] != "81558" {
		t.Errorf("trainer affinity %+v: want the h100 products and at least 81559 MiB", expr)
	}
	if len(tp.ImagePullSecrets) != 1 || len(objs.Secrets) != 1 || objs.Secrets[0].Type != corev1.SecretTypeDockerConfigJson ||
		!strings.Contains(string(objs.Secrets[0].Data[corev1.DockerConfigJsonKey]), "registry.example.com") {
		t.Errorf("trainer pull secret %+v %+v", tp.ImagePullSecrets, objs.Secrets)
	}

	if len(objs.Services) != 2 {
		t.Fatalf("services %+v: want web's in-lease one and its node port", objs.Services)
	}
	local, global := objs.Services[0], objs.Services[1]
	if local.Spec.Type != "" || len(local.Spec.Ports) != 2 || local.Spec.Ports[0].Port != 80 || local.Spec.Ports[0].TargetPort.IntValue() != 8080 || local.Spec.Ports[1].Protocol != corev1.ProtocolUDP {
		t.Errorf("in-lease service %+v", local.Spec)
	}
	if global.Spec.Type != corev1.ServiceTypeNodePort || len(global.Spec.Ports) != 1 || global.Spec.Ports[0].Port != 8080 {
		t.Errorf("node-port service %+v: want the global port only", global.Spec)
	}

	h := objs.Quota.Spec.Hard
	if h.Name(corev1.ResourceRequestsCPU, "").MilliValue() != 5000 || h.Name(corev1.ResourceLimitsMemory, "").Value() != 2*(256<<20)+16<<30 ||
		h.Name("requests."+ResourceGPU, "").Value() != 2 || h.Name(corev1.ResourceServicesNodePorts, "").Value() != 1 ||
		h.Name(corev1.ResourcePods, "").Value() != 7 || h.Name(corev1.ResourcePersistentVolumeClaims, "").Value() != 0 {
		t.Errorf("quota %v", h)
	}

	if len(objs.Policies) != 2 {
		t.Fatalf("policies %+v: want the lease's and web's global one", objs.Policies)
	}
	lease := objs.Policies[0].Spec
	if len(lease.Ingress) != 1 || lease.Ingress[0].From[0].PodSelector == nil || lease.Ingress[0].From[0].NamespaceSelector != nil {
		t.Errorf("lease policy ingress %+v: want the lease's own pods only", lease.Ingress)
	}
	var internet bool
	for _, e := range lease.Egress {
		for _, to := range e.To {
			if to.IPBlock == nil {
				continue
			}
			ex := "," + strings.Join(to.IPBlock.Except, ",") + ","
			if to.IPBlock.CIDR == "0.0.0.0/0" && strings.Contains(ex, ",10.0.0.0/8,") && strings.Contains(ex, ",169.254.0.0/16,") &&
				strings.Contains(ex, ",198.18.0.0/15,") && strings.Contains(ex, ",203.0.113.7/32,") && !strings.Contains(ex, "10.0.0.5/32") {
				internet = true
			}
		}
	}
	if !internet {
		t.Errorf("lease policy egress %+v: want the internet without private, link-local and reserved ranges nor the nodes' public addresses", lease.Egress)
	}
	if g := objs.Policies[1].Spec; len(g.Ingress) != 1 || len(g.Ingress[0].From) != 0 || g.Ingress[0].Ports[0].Port.IntValue() != 8080 || g.PodSelector.MatchLabels[LabelService] != "web" {
		t.Errorf("web global policy %+v: want 8080 open to anyone on web's pods", g)
	}
}

// TestBuildLeaseJob: a job group is Jobs, indexed, never retried, with
// pods that are not restarted.
func TestBuildLeaseJob(t *testing.T) {
	g := sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{{Name: "train", Image: "acme/train:1", Count: 3, Restart: "never",
		Resources: sdl.ManifestResource{CPUMillis: 1000, MemoryBytes: 1 << 30}}}}
	objs, err := testRuntime().buildLease(testLease, g, nil, clusterView{})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Jobs) != 1 || len(objs.Deployments) != 0 {
		t.Fatalf("%d jobs %d deployments", len(objs.Jobs), len(objs.Deployments))
	}
	j := objs.Jobs[0].Spec
	if *j.Completions != 3 || *j.Parallelism != 3 || *j.BackoffLimit != 0 || string(*j.CompletionMode) != "Indexed" || j.Template.Spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("job %+v", j)
	}
}

// TestBuildLeaseRefuses: what the cluster cannot run is refused with the
// error that closes the lease for the right reason, before any object.
func TestBuildLeaseRefuses(t *testing.T) {
	base := func(mod func(*sdl.ManifestService)) sdl.ManifestGroup {
		s := sdl.ManifestService{Name: "app", Image: "docker.io/acme/app:1", Count: 1, Restart: "always", Resources: sdl.ManifestResource{CPUMillis: 100, MemoryBytes: 64 << 20}}
		mod(&s)
		return sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{s}}
	}
	r := testRuntime()
	r.opts.Registries = runtime.RegistryPolicy{Deny: []string{"docker.io"}}
	for _, c := range []struct {
		name string
		g    sdl.ManifestGroup
		want error
	}{
		{"persistent storage", base(func(s *sdl.ManifestService) {
			s.Image = "ghcr.io/a/b:1"
			s.Resources.Persistent = []sdl.PersistentVolume{{Name: "data", Class: "beta2", Bytes: 1 << 30}}
		}), runtime.ErrWorkloadInvalid},
		{"a GPU model no node has", base(func(s *sdl.ManifestService) {
			s.Image, s.Resources.GPUUnits, s.Resources.GPUModels = "ghcr.io/a/b:1", 1, []string{"rtx4090"}
		}), runtime.ErrGPUUnavailable},
		{"a refused registry", base(func(*sdl.ManifestService) {}), runtime.ErrWorkloadInvalid},
		{"a bad environment variable", base(func(s *sdl.ManifestService) { s.Image, s.Env = "ghcr.io/a/b:1", []string{"=x"} }), runtime.ErrWorkloadInvalid},
		{"a port out of range", base(func(s *sdl.ManifestService) {
			s.Image, s.Expose = "ghcr.io/a/b:1", []sdl.ManifestExpose{{Port: 70000}}
		}), runtime.ErrWorkloadInvalid},
	} {
		if _, err := r.buildLease(testLease, c.g, nil, clusterView{products: testProducts}); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	mixed := sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{
		{Name: "a", Image: "ghcr.io/a/a:1", Count: 1, Restart: "never", Resources: sdl.ManifestResource{CPUMillis: 100, MemoryBytes: 1 << 20}},
		{Name: "b", Image: "ghcr.io/a/b:1", Count: 1, Restart: "always", Resources: sdl.ManifestResource{CPUMillis: 100, MemoryBytes: 1 << 20}},
	}}
	if _, err := r.buildLease(testLease, mixed, nil, clusterView{}); !errors.Is(err, runtime.ErrWorkloadInvalid) {
		t.Errorf("a job beside a service: %v", err)
	}
}

func node(name string, ready, unschedulable bool, cpu, mem, gpus string, labels map[string]string) corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	alloc := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem), corev1.ResourceEphemeralStorage: resource.MustParse("100Gi")}
	if gpus != "" {
		alloc[ResourceGPU] = resource.MustParse(gpus)
	}
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Unschedulable: unschedulable},
		Status: corev1.NodeStatus{Allocatable: alloc, Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}}}
}

func podOn(nodeName, provider string, phase corev1.PodPhase, cpu, mem string) corev1.Pod {
	return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelProvider: provider}}, Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}},
	}}}, Status: corev1.PodStatus{Phase: phase}}
}

// TestClusterInventory: what each ready, schedulable node has left after
// others' pods, with its GPUs by model from the product label; this
// provider's own pods are its reservations, not counted twice.
func TestClusterInventory(t *testing.T) {
	h100 := map[string]string{LabelGPUProduct: "NVIDIA-H100-80GB-HBM3", LabelGPUMemory: "81559"}
	nodes := []corev1.Node{
		node("gpu-b", true, false, "32", "256Gi", "4", h100),
		node("cpu-a", true, false, "8", "32Gi", "", nil),
		node("down", false, false, "8", "32Gi", "", nil),
		node("cordoned", true, true, "8", "32Gi", "", nil),
		node("nolabel", true, false, "8", "32Gi", "2", nil),
	}
	pods := []corev1.Pod{
		podOn("cpu-a", "", corev1.PodRunning, "2", "4Gi"),              // the cluster's own
		podOn("cpu-a", testProvider, corev1.PodRunning, "1", "1Gi"),    // ours: a reservation
		podOn("cpu-a", "", corev1.PodSucceeded, "4", "4Gi"),            // ended
		podOn("gpu-b", "gpunet1other", corev1.PodRunning, "30", "8Gi"), // another provider's
	}
	inv := clusterInventory(nodes, pods, testProvider)
	if inv.Source != inventory.SourceKubernetes || len(inv.Nodes) != 3 {
		t.Fatalf("inventory %+v: want the 3 ready, schedulable nodes", inv)
	}
	a, b := inv.Nodes[0], inv.Nodes[1]
	if a.Name != "cpu-a" || a.CPUMillis != 6000 || a.MemoryBytes != 28<<30 || len(a.GPUs) != 0 {
		t.Errorf("cpu-a %+v: want 6 cores, 28Gi", a)
	}
	if b.Name != "gpu-b" || b.CPUMillis != 2000 || len(b.GPUs) != 4 {
		t.Errorf("gpu-b %+v: want 2 cores and 4 GPUs", b)
	}
	if len(inv.GPUs) != 4 || inv.GPUs[0].Model != "h100" || inv.GPUs[0].MemoryMiB != 81559 || !inv.GPUs[0].Healthy || inv.GPUs[0].UUID != b.GPUs[0] {
		t.Errorf("GPUs %+v: want gpu-b's 4 h100s (a node's GPUs without a product label are not offered)", inv.GPUs)
	}
	if inv.CPUMillis != 6000+2000+8000 {
		t.Errorf("CPU %d: want the nodes' sum", inv.CPUMillis)
	}
}

// TestPodFailure: the container states that say a replica will never run
// map to the errors that close its lease for the right reason.
func TestPodFailure(t *testing.T) {
	waiting := func(reason string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}}}}
	}
	for reason, want := range map[string]error{"ErrImagePull": runtime.ErrImageUnavailable, "ImagePullBackOff": runtime.ErrImageUnavailable, "ErrImageNeverPull": runtime.ErrImageUnavailable,
		"CreateContainerConfigError": runtime.ErrWorkloadInvalid, "RunContainerError": runtime.ErrWorkloadInvalid} {
		if err := podFailure(waiting(reason), "app"); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", reason, err, want)
		}
	}
	for _, reason := range []string{"ContainerCreating", "CrashLoopBackOff", "PodInitializing"} {
		if err := podFailure(waiting(reason), "app"); err != nil {
			t.Errorf("%s: %v, want none (it may still run)", reason, err)
		}
	}
	start := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "StartError", ExitCode: 128, Message: "exec: \"/nope\": no such file"}},
	}}}}
	if err := podFailure(start, "app"); !errors.Is(err, runtime.ErrWorkloadInvalid) {
		t.Errorf("a command that cannot start: %v", err)
	}
}

// TestReplicasAndEvents: pods are numbered per service (a job's by its
// completion index), read as replicas in the Docker runtime's terms, and a
// restart after an OOM kill is two events.
func TestReplicasAndEvents(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1_800_000_000, 0))
	pod := func(name, svc, index string, created metav1.Time) *corev1.Pod {
		ann := map[string]string{AnnotationService: svc}
		if index != "" {
			ann[jobIndexAnnotation] = index
		}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Annotations: ann, CreationTimestamp: created}}
	}
	pods := []*corev1.Pod{pod("b", "web", "", metav1.NewTime(t0.Add(time.Second))), pod("j1", "job", "1", t0), pod("a", "web", "", t0), pod("j0", "job", "0", metav1.NewTime(t0.Add(time.Minute)))}
	numberReplicas(pods)
	var got []string
	for _, p := range pods {
		got = append(got, p.Name+"="+p.Annotations[replicaAnnotation])
	}
	if strings.Join(got, " ") != "j0=0 j1=1 a=0 b=1" {
		t.Errorf("replicas %v", got)
	}

	p := pods[2]
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: 1,
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 10s"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137, FinishedAt: t0}},
	}}
	rep := replicaStatus(p)
	if rep.State != "restarting" || rep.ExitCode != 137 || !rep.OOMKilled || rep.RestartCount != 1 || rep.Service != "web" || rep.Replica != 0 || !strings.Contains(rep.Error, "CrashLoopBackOff") {
		t.Errorf("replica %+v", rep)
	}
	old := p.DeepCopy()
	old.Status.ContainerStatuses = []corev1.ContainerStatus{{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: t0}}}}
	evs := podEvents(old, p)
	if len(evs) != 2 || evs[0].Kind != "oom" || evs[1].Kind != "exited" || evs[1].ExitCode != 137 || evs[1].Final {
		t.Errorf("events %+v: want oom, then exited 137 (not final: it restarts)", evs)
	}
	again := p.DeepCopy()
	again.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(t0.Add(10 * time.Second))}}
	if evs := podEvents(p, again); len(evs) != 1 || evs[0].Kind != "started" {
		t.Errorf("events %+v: want started", evs)
	}
}

// TestBuildLeaseVolumes: a service with persistent volumes is a
// StatefulSet whose replicas each claim the volume from the cluster's
// StorageClass the class maps to, mounted where the SDL says; the quota
// holds the lease to those claims.
func TestBuildLeaseVolumes(t *testing.T) {
	r := testRuntime()
	r.opts.StorageClasses = map[string]string{"beta2": "fast-ssd"}
	g := sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{{
		Name: "db", Image: "ghcr.io/acme/db:1", Count: 2, Restart: "always",
		Resources: sdl.ManifestResource{CPUMillis: 1000, MemoryBytes: 1 << 30, Persistent: []sdl.PersistentVolume{{Name: "data", Class: "beta2", Bytes: 10 << 30}}},
		Mounts:    []sdl.ManifestMount{{Volume: "data", Path: "/var/lib/db", Class: "beta2", SizeBytes: 10 << 30, Persistent: true}},
	}}}
	objs, err := r.buildLease(testLease, g, nil, clusterView{})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.StatefulSets) != 1 || len(objs.Deployments) != 0 {
		t.Fatalf("%d stateful sets, %d deployments; want 1 and 0", len(objs.StatefulSets), len(objs.Deployments))
	}
	st := objs.StatefulSets[0].Spec
	if *st.Replicas != 2 || len(st.VolumeClaimTemplates) != 1 || st.PersistentVolumeClaimRetentionPolicy.WhenDeleted != appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		t.Fatalf("stateful set %+v", st)
	}
	claim := st.VolumeClaimTemplates[0]
	if claim.Name != "vol-data" || *claim.Spec.StorageClassName != "fast-ssd" || claim.Spec.Resources.Requests.Storage().Value() != 10<<30 {
		t.Errorf("claim %+v", claim)
	}
	m := st.Template.Spec.Containers[0].VolumeMounts
	if len(m) != 1 || m[0].Name != "vol-data" || m[0].MountPath != "/var/lib/db" {
		t.Errorf("mounts %+v", m)
	}
	h := objs.Quota.Spec.Hard
	if h.Name(corev1.ResourcePersistentVolumeClaims, "").Value() != 2 || h.Name("fast-ssd.storageclass.storage.k8s.io/requests.storage", "").Value() != 20<<30 ||
		h.Name(corev1.ResourceRequestsStorage, "").Value() != 20<<30 {
		t.Errorf("quota %v: want 2 claims of 10Gi in fast-ssd", h)
	}
	g.Services[0].Restart = "never"
	if _, err := r.buildLease(testLease, g, nil, clusterView{}); !errors.Is(err, runtime.ErrWorkloadInvalid) {
		t.Errorf("a job with a persistent volume: %v, want refused", err)
	}
}

// TestGPUReservationPinsNodesAndProducts: a GPU service is held to the
// nodes and products of the devices its bid reserved (and priced), not
// to any product of the models it accepts.
func TestGPUReservationPinsNodesAndProducts(t *testing.T) {
	g := testGroup()
	view := clusterView{products: testProducts, nodeProduct: map[string]string{"gpu-b": "NVIDIA-H100-PCIe", "gpu-a": "NVIDIA-H100-80GB-HBM3"}}
	objs, err := testRuntime().buildLease(testLease, g, []string{"k8s:gpu-b:0", "k8s:gpu-b:1"}, view)
	if err != nil {
		t.Fatal(err)
	}
	expr := objs.Deployments[1].Spec.Template.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms[0].MatchExpressions
	if len(expr) != 3 || strings.Join(expr[0].Values, ",") != "NVIDIA-H100-PCIe" || expr[1].Key != corev1.LabelHostname || strings.Join(expr[1].Values, ",") != "gpu-b" {
		t.Errorf("affinity %+v: want the reserved node's product and the node", expr)
	}
}

// TestCrashCountedOnce: a container's death reported as Terminated and
// then again as the last termination of its restart is one exit.
func TestCrashCountedOnce(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1_800_000_000, 0))
	died := &corev1.ContainerStateTerminated{ContainerID: "containerd://abc", ExitCode: 3, Reason: "Error", FinishedAt: t0}
	running := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: t0}}}}}}
	dead := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Terminated: died}}}}}
	back := &corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{RestartCount: 1,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, LastTerminationState: corev1.ContainerState{Terminated: died}}}}}
	var exits int
	for _, step := range [][2]*corev1.Pod{{running, dead}, {dead, back}} {
		for _, ev := range podEvents(step[0], step[1]) {
			if ev.Kind == "exited" {
				exits++
			}
		}
	}
	if exits != 1 {
		t.Errorf("%d exits told for one death", exits)
	}
	// Missed the Terminated status (the informer skipped it): the restart
	// tells the exit.
	if evs := podEvents(running, back); len(evs) != 1 || evs[0].Kind != "exited" || evs[0].ExitCode != 3 {
		t.Errorf("events %+v: want the exit, from the restart", evs)
	}
}

// TestTaintedNodes: a node tainted for GPUs offers only to GPU pods; one
// with any other NoSchedule taint (a control plane) offers nothing.
func TestTaintedNodes(t *testing.T) {
	h100 := map[string]string{LabelGPUProduct: "NVIDIA-H100-80GB-HBM3"}
	gpu := node("gpu", true, false, "32", "256Gi", "8", h100)
	gpu.Spec.Taints = []corev1.Taint{{Key: string(ResourceGPU), Effect: corev1.TaintEffectNoSchedule}}
	cp := node("cp", true, false, "4", "16Gi", "", nil)
	cp.Spec.Taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
	pref := node("pref", true, false, "4", "16Gi", "", nil)
	pref.Spec.Taints = []corev1.Taint{{Key: "spot", Effect: corev1.TaintEffectPreferNoSchedule}}
	inv := clusterInventory([]corev1.Node{gpu, cp, pref}, nil, testProvider)
	if len(inv.Nodes) != 2 || inv.Nodes[0].Name != "gpu" || !inv.Nodes[0].GPUOnly || inv.Nodes[1].Name != "pref" || inv.Nodes[1].GPUOnly {
		t.Errorf("nodes %+v: want gpu (GPU pods only) and pref, not the control plane", inv.Nodes)
	}
}

// TestForeignNamespaceUntouched: a namespace under the lease's name that
// is not the lease's (another provider's, or a collision) is neither
// written nor deleted.
func TestForeignNamespaceUntouched(t *testing.T) {
	cs := fake.NewSimpleClientset()
	r := testRuntime()
	r.api = clientsetCluster{cs}
	r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	ns := namespace(testProvider, testLease)
	other := leaseLabels(testProvider, runtime.LeaseRef{Order: markettypes.OrderID{Owner: "gpunet1victim", Dseq: 1, Gseq: 1, Oseq: 1}})
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: other,
		Annotations: map[string]string{AnnotationLease: "gpunet1victim/1/1/1"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(context.Background(), testLease); err == nil {
		t.Error("Remove deleted another lease's namespace")
	}
	cpuOnly := testGroup()
	cpuOnly.Services = cpuOnly.Services[:1]
	if err := r.write(context.Background(), runtime.Workload{Lease: testLease, Group: cpuOnly}, false); err == nil || !strings.Contains(err.Error(), "not this lease's") {
		t.Errorf("Deploy into another lease's namespace: %v", err)
	}
	if got, err := cs.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); err != nil || got.Annotations[AnnotationLease] != "gpunet1victim/1/1/1" {
		t.Errorf("the namespace after: %v %+v", err, got)
	}
}

// JobState reads each of a lease's Jobs from its pods as soon as they have
// ended, before the Job controller marks the Job itself (the daemon asks
// when a pod's container exits, and a tenant pays until the lease closes);
// the lease's job has ended only when every Job has.
func TestJobStateFromPods(t *testing.T) {
	ctx := context.Background()
	ns := namespace(testProvider, testLease)
	labels := leaseLabels(testProvider, testLease)
	job := func(name string, cond batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, UID: types.UID("uid-" + name)},
			Spec: batchv1.JobSpec{Completions: ptr(int32(2))}}
		if cond != "" {
			j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue}}
		}
		return j
	}
	pod := func(j *batchv1.Job, i int, phase corev1.PodPhase, exit int32) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", j.Name, i), Namespace: ns, Labels: labels,
			Annotations:     map[string]string{AnnotationService: j.Name},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: j.Name, UID: j.UID, Controller: ptr(true)}}},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever}, Status: corev1.PodStatus{Phase: phase}}
		cs := corev1.ContainerStatus{Name: j.Name}
		if phase == corev1.PodRunning {
			cs.State.Running = &corev1.ContainerStateRunning{}
		} else {
			cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: exit}
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
		return p
	}
	app, appDone, web := job("app", ""), job("app", batchv1.JobComplete), job("web", "")
	for _, tc := range []struct {
		name      string
		jobs      []*batchv1.Job
		pods      []*corev1.Pod
		ended, ok bool
		codes     map[string]int
	}{
		{name: "one pod still runs", jobs: []*batchv1.Job{app},
			pods: []*corev1.Pod{pod(app, 0, corev1.PodSucceeded, 0), pod(app, 1, corev1.PodRunning, 0)}},
		{name: "every pod succeeded, Job not marked yet", jobs: []*batchv1.Job{app},
			pods:  []*corev1.Pod{pod(app, 0, corev1.PodSucceeded, 0), pod(app, 1, corev1.PodSucceeded, 0)},
			ended: true, ok: true, codes: map[string]int{"app-0": 0, "app-1": 0}},
		{name: "a pod failed, Job not marked yet", jobs: []*batchv1.Job{app},
			pods:  []*corev1.Pod{pod(app, 0, corev1.PodFailed, 3), pod(app, 1, corev1.PodRunning, 0)},
			ended: true, codes: map[string]int{"app-0": 3}},
		{name: "Job complete", jobs: []*batchv1.Job{appDone},
			pods:  []*corev1.Pod{pod(appDone, 0, corev1.PodSucceeded, 0), pod(appDone, 1, corev1.PodSucceeded, 0)},
			ended: true, ok: true, codes: map[string]int{"app-0": 0, "app-1": 0}},
		{name: "one Job failed, another still runs", jobs: []*batchv1.Job{app, web},
			pods: []*corev1.Pod{pod(app, 0, corev1.PodFailed, 3), pod(app, 1, corev1.PodSucceeded, 0), pod(web, 0, corev1.PodRunning, 0), pod(web, 1, corev1.PodRunning, 0)}},
		{name: "one Job failed, the other completed", jobs: []*batchv1.Job{app, web},
			pods:  []*corev1.Pod{pod(app, 0, corev1.PodFailed, 3), pod(app, 1, corev1.PodSucceeded, 0), pod(web, 0, corev1.PodSucceeded, 0), pod(web, 1, corev1.PodSucceeded, 0)},
			ended: true, codes: map[string]int{"app-0": 3, "app-1": 0, "web-0": 0, "web-1": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testRuntime()
			cs := fake.NewSimpleClientset()
			r.api, r.log = clientsetCluster{cs}, slog.New(slog.NewTextHandler(io.Discard, nil))
			if _, _, err := r.JobState(ctx, testLease); !errors.Is(err, runtime.ErrLeaseNotFound) {
				t.Fatalf("JobState with no Job: %v, want ErrLeaseNotFound", err)
			}
			for _, j := range tc.jobs {
				if _, err := cs.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range tc.pods {
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			res, ended, err := r.JobState(ctx, testLease)
			if err != nil || ended != tc.ended {
				t.Fatalf("JobState = %+v, ended %v, err %v; want ended %v", res, ended, err, tc.ended)
			}
			if ended && (res.Succeeded != tc.ok || !reflect.DeepEqual(res.ExitCodes, tc.codes)) {
				t.Errorf("JobState = %+v, want succeeded %v, exit codes %v", res, tc.ok, tc.codes)
			}
		})
	}
}

// TestListCountsRunningPods: List names every lease with a namespace of this
// provider, with how many of its pods run (a pod that finished, one being
// deleted and one whose container has not started are not counted), and
// leaves out namespaces being deleted and other providers' pods.
func TestListCountsRunningPods(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewSimpleClientset()
	r := testRuntime()
	r.api, r.log = clientsetCluster{cs}, slog.New(slog.NewTextHandler(io.Discard, nil))
	idle := runtime.LeaseRef{Order: markettypes.OrderID{Owner: "gpunet1tenant", Dseq: 43, Gseq: 1, Oseq: 1}, Provider: testProvider}
	going := runtime.LeaseRef{Order: markettypes.OrderID{Owner: "gpunet1tenant", Dseq: 44, Gseq: 1, Oseq: 1}, Provider: testProvider}
	now := metav1.Now()
	for _, l := range []runtime.LeaseRef{testLease, idle, going} {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace(testProvider, l), Labels: leaseLabels(testProvider, l),
			Annotations: map[string]string{AnnotationLease: l.Order.Name()}}}
		if l == going {
			ns.DeletionTimestamp = &now
		}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod := func(name string, l runtime.LeaseRef, provider string, phase corev1.PodPhase, started, deleting bool) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace(provider, l), Labels: leaseLabels(provider, l),
			Annotations: map[string]string{AnnotationLease: l.Order.Name()}}, Status: corev1.PodStatus{Phase: phase}}
		st := corev1.ContainerStatus{Name: "app"}
		if started {
			st.State.Running = &corev1.ContainerStateRunning{}
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{st}
		if deleting {
			p.DeletionTimestamp = &now
		}
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pod("web-0", testLease, testProvider, corev1.PodRunning, true, false)
	pod("web-1", testLease, testProvider, corev1.PodRunning, true, false)
	pod("web-2", testLease, testProvider, corev1.PodRunning, true, true)
	pod("web-3", testLease, testProvider, corev1.PodPending, false, false)
	pod("job-0", idle, testProvider, corev1.PodSucceeded, false, false)
	pod("x-0", testLease, "gpunet1someoneelse", corev1.PodRunning, true, false)
	held, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]runtime.Held{testLease.Order.Name(): {Ref: testLease, Running: 2, Counted: true}, idle.Order.Name(): {Ref: idle, Counted: true}}
	if !reflect.DeepEqual(held, want) {
		t.Fatalf("List = %+v, want %+v", held, want)
	}

	// A pod listing the API server refuses leaves the leases listed but
	// uncounted: the daemon must neither fail its reconcile nor take a
	// job for ended because none of its pods was seen running.
	cs.PrependReactor("list", "pods", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		return true, nil, errors.New("the server is currently unable to handle the request")
	})
	held, err = r.List(ctx)
	if err != nil {
		t.Fatalf("List with the pod listing failing: %v", err)
	}
	want = map[string]runtime.Held{testLease.Order.Name(): {Ref: testLease}, idle.Order.Name(): {Ref: idle}}
	if !reflect.DeepEqual(held, want) {
		t.Fatalf("List with the pod listing failing = %+v, want %+v", held, want)
	}
}

// TestImagesDueFailsAPodStillPulling: once a pending lease's images are
// due, a pod whose node has done its part (placed, volumes and sandbox
// ready) and still waits for the image fails the deploy as
// ErrImageUnavailable, the tenant's; a pod still waiting on the node
// (its sandbox not ready) is the provider's and is waited for, as is any
// pod before the images are due.
func TestImagesDueFailsAPodStillPulling(t *testing.T) {
	ctx := context.Background()
	g := sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{{Name: "app", Image: "registry.example/tenant/app:1", Count: 1}}}
	for _, c := range []struct {
		name              string
		sandboxReady, due bool
		wantImage         bool
	}{
		{"pulling, due", true, true, true},
		{"sandbox not ready, due", false, true, false},
		{"pulling, not due", true, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := fake.NewSimpleClientset()
			r := testRuntime()
			r.api, r.log = clientsetCluster{cs}, slog.New(slog.NewTextHandler(io.Discard, nil))
			r.opts.DeployTimeout = 1500 * time.Millisecond
			ns := namespace(testProvider, testLease)
			ready := corev1.ConditionFalse
			if c.sandboxReady {
				ready = corev1.ConditionTrue
			}
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app-0", Namespace: ns, Labels: leaseLabels(testProvider, testLease),
				Annotations: map[string]string{AnnotationLease: testLease.Order.Name(), AnnotationManifest: g.Hash(), AnnotationService: "app"}},
				Status: corev1.PodStatus{Phase: corev1.PodPending,
					Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReadyToStartContainers, Status: ready}},
					ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Image: g.Services[0].Image,
						State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}}
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var due chan struct{}
			if c.due {
				due = make(chan struct{})
				time.AfterFunc(300*time.Millisecond, func() { close(due) })
			}
			err := r.waitRunning(ctx, ns, g, due)
			if got := errors.Is(err, runtime.ErrImageUnavailable); got != c.wantImage || err == nil {
				t.Fatalf("waitRunning: %v; want image unavailable: %v", err, c.wantImage)
			}
			if c.wantImage && !strings.Contains(err.Error(), "registry.example/tenant/app:1: the registry had not sent it") {
				t.Errorf("the error does not name the image: %v", err)
			}
		})
	}
}
