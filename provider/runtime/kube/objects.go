package kube

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/gpunet/gpunet/provider/egress"
	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// closedRanges are closed to leases' egress: the provider's own networks,
// its cluster's and its LAN's, link-local (cloud metadata) and reserved
// space, exactly as the Docker runtime's egress filter closes them; the
// nodes' own addresses are closed besides (clusterView.nodeIPs).
func closedRanges(nodeIPs []string) []string {
	var out []string
	for _, p := range egress.Blocked {
		if p.Addr().Is4() {
			out = append(out, p.String())
		}
	}
	for _, ip := range nodeIPs {
		a, err := netip.ParseAddr(ip)
		if err != nil || !a.Is4() || slices.ContainsFunc(egress.Blocked, func(p netip.Prefix) bool { return p.Contains(a) }) {
			continue
		}
		out = append(out, a.String()+"/32")
	}
	return out
}

// leaseObjects are everything a lease's group runs as, before any is
// created: what Deploy applies, built without the cluster so it is tested
// alone.
type leaseObjects struct {
	Namespace    *corev1.Namespace
	Quota        *corev1.ResourceQuota
	Policies     []*networkingv1.NetworkPolicy
	Secrets      []*corev1.Secret
	Services     []*corev1.Service
	Deployments  []*appsv1.Deployment
	StatefulSets []*appsv1.StatefulSet
	Jobs         []*batchv1.Job
	globalPorts  int
	serviceNames map[string]string // SDL name → object name
}

// gpuProducts maps the chain's GPU model names to the product label values
// of the cluster's nodes (several products may share a model name).
type gpuProducts map[string][]string

// clusterView is what building a lease needs to know of the cluster: its
// GPU products, each node's product, the nodes' addresses (closed to
// leases), and the pull secrets the lease's namespace already has.
type clusterView struct {
	products    gpuProducts
	nodeProduct map[string]string
	nodeIPs     []string
	// rollBack: the group is an older version put back, whose private
	// images' credentials were not kept; it uses the pull secrets the
	// namespace still has.
	rollBack bool
}

// viewOf reads the cluster view off its nodes.
func viewOf(nodes []corev1.Node) clusterView {
	v := clusterView{products: productsOf(nodes), nodeProduct: map[string]string{}}
	for _, n := range nodes {
		v.nodeProduct[n.Name] = n.Labels[LabelGPUProduct]
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
				v.nodeIPs = append(v.nodeIPs, a.Address)
			}
		}
	}
	sort.Strings(v.nodeIPs)
	v.nodeIPs = slices.Compact(v.nodeIPs)
	return v
}

// productsOf reads the GPU products off nodes' labels.
func productsOf(nodes []corev1.Node) gpuProducts {
	out := gpuProducts{}
	for _, n := range nodes {
		p := n.Labels[LabelGPUProduct]
		if p == "" {
			continue
		}
		slug := providertypes.CanonicalGPUModel(p)
		if !slices.Contains(out[slug], p) {
			out[slug] = append(out[slug], p)
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

// buildLease turns a lease's group into its objects. gpus are the
// lease's reserved devices ("k8s:<node>:<i>", in service and replica
// order): a GPU service is held to their nodes and products.
func (r *Runtime) buildLease(l runtime.LeaseRef, g sdl.ManifestGroup, reserved []string, view clusterView) (*leaseObjects, error) {
	if len(g.Services) == 0 {
		return nil, fmt.Errorf("%w: the group has no services", runtime.ErrWorkloadInvalid)
	}
	ns := namespace(r.opts.Provider, l)
	labels := leaseLabels(r.opts.Provider, l)
	annotations := map[string]string{AnnotationLease: l.Order.Name()}
	out := &leaseObjects{serviceNames: map[string]string{}}
	nsLabels := copyMap(labels)
	// Even a bug here cannot run a privileged pod or mount the host:
	// the namespace enforces the baseline Pod Security Standard.
	nsLabels["pod-security.kubernetes.io/enforce"] = "baseline"
	nsAnn := copyMap(annotations)
	groupJSON, err := json.Marshal(withoutCredentials(g))
	if err != nil {
		return nil, err
	}
	nsAnn[AnnotationGroup] = string(groupJSON)
	out.Namespace = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: nsLabels, Annotations: nsAnn}}

	job := false
	var cpu, mem, storage, gpus, pods, claims int64
	claimed := map[string]int64{} // bytes by cluster StorageClass
	for _, s := range g.Services {
		if err := r.checkService(s); err != nil {
			return nil, err
		}
		if err := r.opts.Registries.Check(s.Image); err != nil {
			return nil, fmt.Errorf("%w: service %q: %v", runtime.ErrWorkloadInvalid, s.Name, err)
		}
		name := objectName(s.Name)
		if _, dup := out.serviceNames[s.Name]; dup || slices.Contains(mapValues(out.serviceNames), name) {
			return nil, fmt.Errorf("%w: two services are both named %q here", runtime.ErrWorkloadInvalid, name)
		}
		out.serviceNames[s.Name] = name
		job = job || s.Restart == "never"
		n := int64(s.Count)
		cpu += n * int64(s.Resources.CPUMillis)
		mem += n * int64(s.Resources.MemoryBytes) // RAM volumes included (the SDL counts them in)
		storage += n * int64(s.Resources.StorageBytes)
		gpus += n * int64(s.Resources.GPUUnits)
		pods += n
		for _, v := range s.Resources.Persistent {
			claims += n
			claimed[r.opts.StorageClasses[v.Class]] += n * int64(v.Bytes)
		}
	}
	if job {
		for _, s := range g.Services {
			if s.Restart != "never" {
				return nil, fmt.Errorf("%w: service %q runs forever beside a job's services", runtime.ErrWorkloadInvalid, s.Name)
			}
			if len(s.Resources.Persistent) > 0 {
				return nil, fmt.Errorf("%w: job %q asks for persistent storage; on this provider's cluster only services keep volumes", runtime.ErrWorkloadInvalid, s.Name)
			}
		}
	}
	hard := corev1.ResourceList{
		// Replaced pods linger while they terminate.
		corev1.ResourcePods:                   *resource.NewQuantity(2*pods+1, resource.DecimalSI),
		corev1.ResourceRequestsCPU:            *resource.NewMilliQuantity(cpu, resource.DecimalSI),
		corev1.ResourceLimitsCPU:              *resource.NewMilliQuantity(cpu, resource.DecimalSI),
		corev1.ResourceRequestsMemory:         *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourceLimitsMemory:           *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePersistentVolumeClaims: *resource.NewQuantity(claims, resource.DecimalSI),
		corev1.ResourceServicesLoadBalancers:  *resource.NewQuantity(0, resource.DecimalSI),
		"requests." + ResourceGPU:             *resource.NewQuantity(gpus, resource.DecimalSI),
	}
	var total int64
	for class, b := range claimed {
		hard[corev1.ResourceName(class+".storageclass.storage.k8s.io/requests.storage")] = *resource.NewQuantity(b, resource.BinarySI)
		total += b
	}
	hard[corev1.ResourceRequestsStorage] = *resource.NewQuantity(total, resource.BinarySI)
	if storage > 0 {
		hard[corev1.ResourceRequestsEphemeralStorage] = *resource.NewQuantity(storage, resource.BinarySI)
		hard[corev1.ResourceLimitsEphemeralStorage] = *resource.NewQuantity(storage, resource.BinarySI)
	}

	for _, s := range g.Services {
		name := out.serviceNames[s.Name]
		podLabels := copyMap(labels)
		podLabels[LabelService] = name
		podAnn := copyMap(annotations)
		podAnn[AnnotationService] = s.Name
		podAnn[AnnotationManifest] = g.Hash()
		meta := metav1.ObjectMeta{Name: name, Namespace: ns, Labels: podLabels, Annotations: copyMap(podAnn)}
		var pullSecrets []corev1.LocalObjectReference
		if c := s.Credentials; c != nil {
			sec, err := pullSecret(ns, name+"--pull", labels, c)
			if err != nil {
				return nil, err
			}
			out.Secrets = append(out.Secrets, sec)
			pullSecrets = []corev1.LocalObjectReference{{Name: sec.Name}}
		} else if view.rollBack {
			pullSecrets = []corev1.LocalObjectReference{{Name: name + "--pull"}} // optional: a missing one is skipped
		}
		spec, err := r.podSpec(s, name, view, serviceGPUs(g, s.Name, reserved), job)
		if err != nil {
			return nil, err
		}
		spec.ImagePullSecrets = pullSecrets
		tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnn}, Spec: spec}
		count := int32(s.Count)
		if job {
			mode := batchv1.IndexedCompletion
			out.Jobs = append(out.Jobs, &batchv1.Job{ObjectMeta: meta, Spec: batchv1.JobSpec{
				Parallelism: &count, Completions: &count, CompletionMode: &mode, BackoffLimit: ptr(int32(0)),
				Template: tmpl,
			}})
		} else if len(s.Resources.Persistent) > 0 {
			// Volumes that outlive a replica: a StatefulSet, each replica
			// with its own claims, kept across updates and restarts and
			// deleted with the lease.
			out.StatefulSets = append(out.StatefulSets, &appsv1.StatefulSet{ObjectMeta: meta, Spec: appsv1.StatefulSetSpec{
				Replicas: &count, ServiceName: name,
				Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{LabelProvider: r.opts.Provider, LabelService: name}},
				PodManagementPolicy:  appsv1.ParallelPodManagement,
				RevisionHistoryLimit: ptr(int32(2)),
				Template:             tmpl,
				VolumeClaimTemplates: r.claims(s, labels),
				PersistentVolumeClaimRetentionPolicy: &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
					WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType, WhenScaled: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
				},
			}})
		} else {
			out.Deployments = append(out.Deployments, &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
				Replicas: &count,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelProvider: r.opts.Provider, LabelService: name}},
				// One version at a time: GPUs and the quota are the
				// lease's, not twice the lease's.
				Strategy:             appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
				RevisionHistoryLimit: ptr(int32(2)),
				Template:             tmpl,
			}})
		}
		svcs, global := serviceObjects(ns, name, labels, s)
		out.Services = append(out.Services, svcs...)
		out.globalPorts += global
	}
	hard[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(int64(out.globalPorts), resource.DecimalSI)
	out.Quota = &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "lease", Namespace: ns, Labels: labels}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}
	out.Policies = r.policies(ns, labels, g, out.serviceNames, view.nodeIPs)
	return out, nil
}

// serviceGPUs are the reserved devices of one service: the group's
// reservation is handed out in service, replica order, each replica taking
// its GPU units.
func serviceGPUs(g sdl.ManifestGroup, service string, gpus []string) []string {
	next := 0
	for _, s := range g.Services {
		n := int(s.Count) * int(s.Resources.GPUUnits)
		if next+n > len(gpus) {
			return nil
		}
		if s.Name == service {
			return gpus[next : next+n]
		}
		next += n
	}
	return nil
}

// checkService refuses what the cluster would refuse less clearly, or this
// runtime does not offer.
func (r *Runtime) checkService(s sdl.ManifestService) error {
	switch {
	case s.Name == "":
		return fmt.Errorf("%w: a service has no name", runtime.ErrWorkloadInvalid)
	case s.Image == "":
		return fmt.Errorf("%w: service %q has no image", runtime.ErrWorkloadInvalid, s.Name)
	case s.Count == 0:
		return fmt.Errorf("%w: service %q has count 0", runtime.ErrWorkloadInvalid, s.Name)
	}
	for _, v := range s.Resources.Persistent {
		if r.opts.StorageClasses[v.Class] == "" {
			return fmt.Errorf("%w: service %q asks for persistent storage of class %q, which this provider does not offer", runtime.ErrWorkloadInvalid, s.Name, v.Class)
		}
	}
	if err := sdl.CheckEnv(s.Env); err != nil {
		return fmt.Errorf("%w: service %q: %v", runtime.ErrWorkloadInvalid, s.Name, err)
	}
	for _, m := range s.Mounts {
		if m.Class != sdl.ClassRAM && !m.Persistent {
			return fmt.Errorf("%w: service %q mounts volume %q of class %q, neither ram nor persistent", runtime.ErrWorkloadInvalid, s.Name, m.Volume, m.Class)
		}
		if m.Persistent && !slices.ContainsFunc(s.Resources.Persistent, func(v sdl.PersistentVolume) bool { return v.Name == m.Volume }) {
			return fmt.Errorf("%w: service %q mounts persistent volume %q it does not ask for", runtime.ErrWorkloadInvalid, s.Name, m.Volume)
		}
		if err := sdl.CheckMountPath(m.Path, m.Class == sdl.ClassRAM); err != nil {
			return fmt.Errorf("%w: service %q: %v", runtime.ErrWorkloadInvalid, s.Name, err)
		}
	}
	for _, e := range s.Expose {
		if e.Port == 0 || e.Port > 65535 || e.As > 65535 {
			return fmt.Errorf("%w: service %q exposes port %d as %d; ports are 1-65535", runtime.ErrWorkloadInvalid, s.Name, e.Port, e.As)
		}
		if p := protoOf(e); p != corev1.ProtocolTCP && p != corev1.ProtocolUDP {
			return fmt.Errorf("%w: service %q exposes port %d/%s; protocols are tcp and udp", runtime.ErrWorkloadInvalid, s.Name, e.Port, e.Proto)
		}
	}
	return nil
}

// podSpec is one replica's pod: confined, with the service's resources as
// requests and limits.
func (r *Runtime) podSpec(s sdl.ManifestService, name string, view clusterView, reserved []string, job bool) (corev1.PodSpec, error) {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(s.Resources.CPUMillis), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(s.Resources.MemoryBytes), resource.BinarySI),
	}
	if s.Resources.StorageBytes > 0 {
		res[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(s.Resources.StorageBytes), resource.BinarySI)
	}
	env := make([]corev1.EnvVar, 0, len(s.Env)+1)
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	if s.Resources.GPUUnits == 0 {
		// A CUDA image asks the NVIDIA runtime for every GPU of the node
		// (its own NVIDIA_VISIBLE_DEVICES=all); a replica that rents none
		// sees none.
		env = append(env, corev1.EnvVar{Name: "NVIDIA_VISIBLE_DEVICES", Value: "void"})
	}
	c := corev1.Container{
		Name: name, Image: s.Image, Command: s.Command, Args: s.Args, Env: env,
		ImagePullPolicy: pullPolicy(r.opts.PullPolicy, s),
		SecurityContext: &corev1.SecurityContext{
			Privileged:               ptr(false),
			AllowPrivilegeEscalation: ptr(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	if r.opts.RunAsNonRoot {
		c.SecurityContext.RunAsNonRoot = ptr(true)
	}
	if u := r.opts.ContainerUser; u != "" {
		uid, gid, _ := strings.Cut(u, ":")
		ui, err1 := strconv.ParseInt(uid, 10, 64)
		gi, err2 := strconv.ParseInt(gid, 10, 64)
		if err1 != nil || err2 != nil {
			return corev1.PodSpec{}, fmt.Errorf("container user %q is not uid:gid", u)
		}
		c.SecurityContext.RunAsUser, c.SecurityContext.RunAsGroup, c.SecurityContext.RunAsNonRoot = &ui, &gi, ptr(true)
	}
	seen := map[string]bool{}
	for _, e := range s.Expose {
		k := fmt.Sprintf("%d/%s", e.Port, protoOf(e))
		if !seen[k] {
			seen[k] = true
			c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: int32(e.Port), Protocol: protoOf(e)})
		}
	}
	spec := corev1.PodSpec{
		AutomountServiceAccountToken: ptr(false),
		EnableServiceLinks:           ptr(false),
		RestartPolicy:                corev1.RestartPolicyAlways,
		SecurityContext:              &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
	}
	if job {
		spec.RestartPolicy = corev1.RestartPolicyNever
	}
	if r.opts.RuntimeClass != "" {
		spec.RuntimeClassName = ptr(r.opts.RuntimeClass)
	}
	for i, m := range s.Mounts {
		if m.Persistent {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: claimName(m.Volume), MountPath: m.Path, ReadOnly: m.ReadOnly})
			continue
		}
		vol := fmt.Sprintf("ram-%d", i)
		size := resource.NewQuantity(int64(m.SizeBytes), resource.BinarySI)
		// Memory-backed, and already counted in the replica's memory.
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: size}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vol, MountPath: m.Path, ReadOnly: m.ReadOnly})
	}
	if n := s.Resources.GPUUnits; n > 0 {
		res[ResourceGPU] = *resource.NewQuantity(int64(n), resource.DecimalSI)
		aff, err := gpuAffinity(s, view, reserved)
		if err != nil {
			return corev1.PodSpec{}, err
		}
		spec.Affinity = aff
		spec.Tolerations = []corev1.Toleration{{Key: string(ResourceGPU), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	}
	c.Resources = corev1.ResourceRequirements{Requests: res, Limits: res}
	spec.Containers = []corev1.Container{c}
	return spec, nil
}

// pullPolicy is the container's: a private image is pulled again with the
// tenant's credentials every time (unless nothing is pulled at all), so
// no tenant runs another's private image from a node's cache.
func pullPolicy(p corev1.PullPolicy, s sdl.ManifestService) corev1.PullPolicy {
	if s.Credentials != nil && p != corev1.PullNever {
		return corev1.PullAlways
	}
	return p
}

// claimName is a persistent volume's claim template name.
func claimName(volume string) string { return "vol-" + objectName(volume) }

// claims are a service's persistent volumes as claim templates, of the
// cluster's StorageClass for each class, one of each per replica.
func (r *Runtime) claims(s sdl.ManifestService, labels map[string]string) []corev1.PersistentVolumeClaim {
	var out []corev1.PersistentVolumeClaim
	for _, v := range s.Resources.Persistent {
		class := r.opts.StorageClasses[v.Class]
		out = append(out, corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: claimName(v.Name), Labels: labels},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				StorageClassName: &class,
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: *resource.NewQuantity(int64(v.Bytes), resource.BinarySI)}},
			},
		})
	}
	return out
}

// gpuAffinity keeps a GPU replica to nodes whose GPU product is one of the
// models it accepts (any GPU node when it names none), with at least the
// memory it asks for; with a reservation from the cluster's inventory, to
// the nodes and products of the devices reserved (the bid's price was for
// them).
func gpuAffinity(s sdl.ManifestService, view clusterView, reserved []string) (*corev1.Affinity, error) {
	var reqs []corev1.NodeSelectorRequirement
	var nodes, products []string
	for _, u := range reserved {
		parts := strings.Split(u, ":")
		if len(parts) != 3 || parts[0] != "k8s" {
			nodes, products = nil, nil
			break
		}
		if !slices.Contains(nodes, parts[1]) {
			nodes = append(nodes, parts[1])
		}
		if p := view.nodeProduct[parts[1]]; p != "" && !slices.Contains(products, p) {
			products = append(products, p)
		}
	}
	if len(nodes) > 0 && len(products) > 0 {
		sort.Strings(nodes)
		sort.Strings(products)
		reqs = append(reqs,
			corev1.NodeSelectorRequirement{Key: LabelGPUProduct, Operator: corev1.NodeSelectorOpIn, Values: products},
			corev1.NodeSelectorRequirement{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: nodes})
	} else if len(s.Resources.GPUModels) > 0 {
		products := view.products
		var values []string
		for _, m := range s.Resources.GPUModels {
			values = append(values, products[providertypes.CanonicalGPUModel(m)]...)
		}
		if len(values) == 0 {
			return nil, fmt.Errorf("%w: no node of the cluster has a GPU of model %s", runtime.ErrGPUUnavailable, strings.Join(s.Resources.GPUModels, " or "))
		}
		sort.Strings(values)
		reqs = append(reqs, corev1.NodeSelectorRequirement{Key: LabelGPUProduct, Operator: corev1.NodeSelectorOpIn, Values: slices.Compact(values)})
	} else {
		reqs = append(reqs, corev1.NodeSelectorRequirement{Key: LabelGPUProduct, Operator: corev1.NodeSelectorOpExists})
	}
	if mib := s.Resources.GPUMemoryMiB; mib > 0 {
		reqs = append(reqs, corev1.NodeSelectorRequirement{Key: LabelGPUMemory, Operator: corev1.NodeSelectorOpGt, Values: []string{strconv.FormatUint(mib-1, 10)}})
	}
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: reqs}},
	}}}, nil
}

// serviceObjects are a service's Services: a ClusterIP one with every
// exposed port, under the service's name (its replicas' address inside
// the lease), and a NodePort one with the global ports.
func serviceObjects(ns, name string, labels map[string]string, s sdl.ManifestService) ([]*corev1.Service, int) {
	if len(s.Expose) == 0 {
		return nil, 0
	}
	sel := map[string]string{LabelProvider: labels[LabelProvider], LabelService: name}
	var local, global []corev1.ServicePort
	seenL, seenG := map[string]bool{}, map[string]bool{}
	for _, e := range s.Expose {
		proto := protoOf(e)
		as := e.As
		if as == 0 {
			as = e.Port
		}
		k := fmt.Sprintf("%d/%s", as, proto)
		if !seenL[k] {
			seenL[k] = true
			local = append(local, corev1.ServicePort{Name: portName(as, proto), Port: int32(as), Protocol: proto, TargetPort: intstr.FromInt32(int32(e.Port))})
		}
		g := fmt.Sprintf("%d/%s", e.Port, proto)
		if e.Global && !seenG[g] {
			seenG[g] = true
			global = append(global, corev1.ServicePort{Name: portName(e.Port, proto), Port: int32(e.Port), Protocol: proto, TargetPort: intstr.FromInt32(int32(e.Port))})
		}
	}
	out := []*corev1.Service{{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}, Spec: corev1.ServiceSpec{Selector: sel, Ports: local}}}
	if len(global) > 0 {
		out = append(out, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name + "--global", Namespace: ns, Labels: labels}, Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeNodePort, Selector: sel, Ports: global, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
		}})
	}
	return out, len(global)
}

// policies keep the lease's pods apart: traffic in only from the lease's
// own pods (and from anywhere to its global ports), out only to its own
// pods, the cluster's DNS and the internet without the provider's private
// ranges (EgressAllow opens some).
func (r *Runtime) policies(ns string, labels map[string]string, g sdl.ManifestGroup, names map[string]string, nodeIPs []string) []*networkingv1.NetworkPolicy {
	udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
	dns := intstr.FromInt32(53)
	var allowed []networkingv1.NetworkPolicyPeer
	for _, c := range r.opts.EgressAllow {
		allowed = append(allowed, networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: c}})
	}
	egress := []networkingv1.NetworkPolicyEgressRule{
		{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
		{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &dns}, {Protocol: &tcp, Port: &dns}}},
		{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: closedRanges(nodeIPs)}}}},
	}
	if len(allowed) > 0 {
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{To: allowed})
	}
	out := []*networkingv1.NetworkPolicy{{
		ObjectMeta: metav1.ObjectMeta{Name: "lease", Namespace: ns, Labels: labels},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}}},
			Egress:      egress,
		},
	}}
	for _, s := range g.Services {
		var ports []networkingv1.NetworkPolicyPort
		for _, e := range s.Expose {
			if e.Global {
				p, port := protoOf(e), intstr.FromInt32(int32(e.Port))
				ports = append(ports, networkingv1.NetworkPolicyPort{Protocol: &p, Port: &port})
			}
		}
		if len(ports) == 0 {
			continue
		}
		name := names[s.Name]
		out = append(out, &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name + "--global", Namespace: ns, Labels: labels},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelService: name}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{Ports: ports}},
			},
		})
	}
	return out
}

// pullSecret is a private image's registry login as a docker-config
// secret.
func pullSecret(ns, name string, labels map[string]string, c *sdl.Credentials) (*corev1.Secret, error) {
	host := c.Host
	if host == "" || host == "docker.io" {
		host = "https://index.docker.io/v1/"
	}
	auth := base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
	cfg, err := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"username": c.Username, "password": c.Password, "email": c.Email, "auth": auth}}})
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: cfg},
	}, nil
}

func protoOf(e sdl.ManifestExpose) corev1.Protocol {
	switch strings.ToLower(e.Proto) {
	case "", "tcp":
		return corev1.ProtocolTCP
	case "udp":
		return corev1.ProtocolUDP
	}
	return corev1.Protocol(e.Proto)
}

func portName(port uint32, proto corev1.Protocol) string {
	return fmt.Sprintf("%s-%d", strings.ToLower(string(proto)), port)
}

func withoutCredentials(g sdl.ManifestGroup) sdl.ManifestGroup {
	c := sdl.ManifestGroup{Name: g.Name, Services: append([]sdl.ManifestService(nil), g.Services...)}
	for i := range c.Services {
		c.Services[i].Credentials = nil
	}
	return c
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+4)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func ptr[T any](v T) *T { return &v }
