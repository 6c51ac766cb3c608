package kube

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gpunet/gpunet/provider/runtime"
)

// jobIndexAnnotation is the completion index of an Indexed Job's pod;
// statefulSetIndexLabel the ordinal of a StatefulSet's.
const (
	jobIndexAnnotation    = "batch.kubernetes.io/job-completion-index"
	statefulSetIndexLabel = "apps.kubernetes.io/pod-index"
)

// Status reports the lease's pods as replicas, with their global ports at
// NodeHost and the node ports. A lease the cluster has nothing for is not
// an error: the status has no Services.
func (r *Runtime) Status(ctx context.Context, l runtime.LeaseRef) (runtime.LeaseStatus, error) {
	if l.Provider == "" {
		l.Provider = r.opts.Provider
	}
	ns := namespace(r.opts.Provider, l)
	st := runtime.LeaseStatus{Lease: l, Network: ns, Services: map[string][]runtime.ReplicaStatus{}}
	pods, err := r.leasePods(ctx, l)
	if err != nil {
		return st, err
	}
	if len(pods) == 0 {
		return st, nil
	}
	svcs, err := r.api.services(ns).List(ctx, listMine(r.opts.Provider, 0))
	if err != nil {
		return st, fmt.Errorf("lease %s: list services: %w", l.Order.Name(), err)
	}
	ports := map[string][]runtime.PortStatus{} // by service label
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeNodePort {
			continue
		}
		name := s.Spec.Selector[LabelService]
		for _, p := range s.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			ports[name] = append(ports[name], runtime.PortStatus{
				ContainerPort: uint16(p.TargetPort.IntValue()), Proto: strings.ToLower(string(p.Protocol)),
				HostIP: r.opts.NodeHost, HostPort: uint16(p.NodePort),
			})
		}
	}
	for _, p := range pods {
		rep := replicaStatus(p)
		rep.Ports = ports[p.Labels[LabelService]]
		st.Services[rep.Service] = append(st.Services[rep.Service], rep)
	}
	return st, nil
}

// leasePods are the lease's live pods (not being deleted), by service in
// replica order: a job's by completion index, a deployment's by age.
func (r *Runtime) leasePods(ctx context.Context, l runtime.LeaseRef) ([]*corev1.Pod, error) {
	ns := namespace(r.opts.Provider, l)
	list, err := r.api.pods(ns).List(ctx, listMine(r.opts.Provider, 0))
	if err != nil {
		return nil, fmt.Errorf("lease %s: list pods: %w", l.Order.Name(), err)
	}
	var out []*corev1.Pod
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		if p.Status.Phase == corev1.PodFailed && p.Spec.RestartPolicy != corev1.RestartPolicyNever {
			continue // an evicted service pod: its controller made another
		}
		out = append(out, p)
	}
	numberReplicas(out)
	return out, nil
}

// replicaAnnotation carries the replica number numberReplicas gives a pod
// (on the object in memory only).
const replicaAnnotation = "gpunet.replica"

// numberReplicas sorts pods by service and replica and numbers each
// service's pods from 0.
func numberReplicas(pods []*corev1.Pod) {
	index := func(p *corev1.Pod) int {
		if v, ok := p.Annotations[jobIndexAnnotation]; ok {
			if i, err := strconv.Atoi(v); err == nil {
				return i
			}
		}
		if v, ok := p.Labels[statefulSetIndexLabel]; ok {
			if i, err := strconv.Atoi(v); err == nil {
				return i
			}
		}
		return -1
	}
	sort.SliceStable(pods, func(a, b int) bool {
		pa, pb := pods[a], pods[b]
		if sa, sb := pa.Annotations[AnnotationService], pb.Annotations[AnnotationService]; sa != sb {
			return sa < sb
		}
		if ia, ib := index(pa), index(pb); ia != ib {
			return ia < ib
		}
		if !pa.CreationTimestamp.Equal(&pb.CreationTimestamp) {
			return pa.CreationTimestamp.Before(&pb.CreationTimestamp)
		}
		return pa.Name < pb.Name
	})
	n := map[string]int{}
	for _, p := range pods {
		svc := p.Annotations[AnnotationService]
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[replicaAnnotation] = strconv.Itoa(n[svc])
		n[svc]++
	}
}

// replicaStatus reads one pod as a replica, in the Docker runtime's terms
// (created, running, restarting, exited).
func replicaStatus(p *corev1.Pod) runtime.ReplicaStatus {
	rep, _ := strconv.Atoi(p.Annotations[replicaAnnotation])
	out := runtime.ReplicaStatus{
		Service: p.Annotations[AnnotationService], Replica: rep,
		ContainerName: p.Name, ContainerID: p.Namespace + "/" + p.Name,
		Manifest: p.Annotations[AnnotationManifest], State: "created",
	}
	if len(p.Spec.Containers) > 0 {
		out.Image = p.Spec.Containers[0].Image
	}
	if m := podScheduleBlocked(p); m != "" {
		out.Error = "unschedulable: " + m
	}
	if len(p.Status.ContainerStatuses) == 0 {
		return out
	}
	cs := p.Status.ContainerStatuses[0]
	out.RestartCount = int(cs.RestartCount)
	last := cs.LastTerminationState.Terminated
	switch {
	case cs.State.Running != nil:
		out.State, out.StartedAt = "running", cs.State.Running.StartedAt.Time
	case cs.State.Terminated != nil:
		t := cs.State.Terminated
		out.State, out.ExitCode, out.StartedAt, out.FinishedAt = "exited", int(t.ExitCode), t.StartedAt.Time, t.FinishedAt.Time
		out.OOMKilled = t.Reason == "OOMKilled"
		if t.Reason != "Completed" && t.Reason != "Error" && t.Reason != "OOMKilled" {
			out.Error = strings.TrimSpace(t.Reason + ": " + t.Message)
		}
	case cs.State.Waiting != nil:
		w := cs.State.Waiting
		if cs.RestartCount > 0 || last != nil {
			out.State = "restarting"
		}
		if w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			out.Error = strings.TrimSpace(w.Reason + ": " + w.Message)
		}
	}
	if last != nil {
		if out.State != "exited" {
			out.ExitCode, out.FinishedAt = int(last.ExitCode), last.FinishedAt.Time
		}
		out.OOMKilled = out.OOMKilled || last.Reason == "OOMKilled"
	}
	return out
}

// RunningContainers counts this provider's running pods by lease
// (owner/dseq/gseq/oseq), listing them in pages of 500 however many leases
// there are.
func (r *Runtime) RunningContainers(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	opts := listMine(r.opts.Provider, 500)
	for {
		pods, err := r.api.pods(metav1.NamespaceAll).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list pods: %w", err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
				continue
			}
			running := false
			for _, cs := range p.Status.ContainerStatuses {
				running = running || cs.State.Running != nil
			}
			if l, ok := leaseOf(p.Labels, p.Annotations); ok && running {
				out[l.Order.Name()]++
			}
		}
		if pods.Continue == "" {
			return out, nil
		}
		opts.Continue = pods.Continue
	}
}

// List returns every lease this provider has a namespace for, keyed by
// lease name, with how many of its pods run: a restarted daemon adopts the
// live ones and removes the others.
func (r *Runtime) List(ctx context.Context) (map[string]runtime.Held, error) {
	out := map[string]runtime.Held{}
	opts := listMine(r.opts.Provider, 500)
	for {
		nss, err := r.api.namespaces().List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
		for _, ns := range nss.Items {
			if ns.DeletionTimestamp != nil {
				continue // already going
			}
			l, ok := leaseOf(ns.Labels, ns.Annotations)
			if !ok {
				r.log.Warn("namespace with malformed lease labels ignored", "namespace", ns.Name)
				continue
			}
			out[l.Order.Name()] = runtime.Held{Ref: l}
		}
		if nss.Continue == "" {
			break
		}
		opts.Continue = nss.Continue
	}
	// The leases are known from their namespaces; a pod listing that fails
	// (an API server throttling a large cluster) leaves them uncounted
	// rather than fail the daemon's whole reconcile.
	running, err := r.RunningContainers(ctx)
	if err != nil {
		r.log.Warn("leases listed but their pods not counted", "err", err)
		return out, nil
	}
	for key, h := range out {
		h.Running, h.Counted = running[key], true
		out[key] = h
	}
	return out, nil
}

// Remove deletes the lease's namespace, and with it everything the lease
// ran, and waits until the namespace is gone (a deploy may follow at once
// under the same name). Removing a lease the cluster has nothing for is
// fine; a namespace of that name that is not this lease's is not touched.
func (r *Runtime) Remove(ctx context.Context, l runtime.LeaseRef) error {
	ns := namespace(r.opts.Provider, l)
	cur, err := r.api.namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	if got, ok := leaseOf(cur.Labels, cur.Annotations); !ok || got.Order != l.Order || got.Provider != r.opts.Provider {
		return fmt.Errorf("namespace %s is not lease %s's: refusing to delete it", ns, l.Order.Name())
	}
	err = r.api.namespaces().Delete(ctx, ns, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	for {
		_, err := r.api.namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			r.log.Info("lease removed", "lease", l.Order.Name(), "namespace", ns)
			return nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return fmt.Errorf("namespace %s still there: %w", ns, err)
		}
	}
}

// Usage reads what the lease's running pods use from their nodes' kubelet
// (its stats summary, through the API server), by ContainerID.
func (r *Runtime) Usage(ctx context.Context, l runtime.LeaseRef) (map[string]runtime.ContainerUsage, error) {
	pods, err := r.leasePods(ctx, l)
	if err != nil {
		return nil, err
	}
	byNode := map[string][]*corev1.Pod{}
	var nodes []string
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning {
			continue
		}
		if _, ok := byNode[p.Spec.NodeName]; !ok {
			nodes = append(nodes, p.Spec.NodeName)
		}
		byNode[p.Spec.NodeName] = append(byNode[p.Spec.NodeName], p)
	}
	out := map[string]runtime.ContainerUsage{}
	for _, n := range nodes {
		sum, err := r.nodeSummary(ctx, n)
		if err != nil {
			return out, err
		}
		for _, p := range byNode[n] {
			u, ok := sum[p.Namespace+"/"+p.Name]
			if !ok {
				continue
			}
			if len(p.Spec.Containers) > 0 {
				if q, ok := p.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]; ok {
					u.MemoryLimit = uint64(q.Value())
				}
			}
			out[p.Namespace+"/"+p.Name] = u
		}
	}
	return out, nil
}
