package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"

	"github.com/gpunet/gpunet/provider/runtime"
	"github.com/gpunet/gpunet/sdl"
)

// PullImages does nothing: the cluster's nodes pull images as they start
// the lease's pods, during Deploy.
func (r *Runtime) PullImages(context.Context, runtime.Workload) error { return nil }

// Deploy creates the lease's namespace and objects and returns once every
// replica of every service runs (a job's: ran), or says why not: the image
// (runtime.ErrImageUnavailable), the tenant's workload
// (runtime.ErrWorkloadInvalid), no node with the GPUs
// (runtime.ErrGPUUnavailable), or a timeout.
func (r *Runtime) Deploy(ctx context.Context, w runtime.Workload) (runtime.LeaseStatus, error) {
	if err := r.apply(ctx, w); err != nil {
		return runtime.LeaseStatus{Lease: w.Lease}, err
	}
	return r.Status(ctx, w.Lease)
}

// Update moves a running lease to another version of its group. When the
// new version cannot run, the old one is applied again and runs on.
func (r *Runtime) Update(ctx context.Context, w runtime.Workload) (runtime.LeaseStatus, error) {
	ns := namespace(r.opts.Provider, w.Lease)
	cur, err := r.api.namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return runtime.LeaseStatus{Lease: w.Lease}, fmt.Errorf("lease %s: %w", w.Lease.Order.Name(), err)
	}
	var old sdl.ManifestGroup
	oldErr := json.Unmarshal([]byte(cur.Annotations[AnnotationGroup]), &old)
	err = r.apply(ctx, w)
	if err == nil {
		err = r.settle(ctx, w.Lease, w.Group)
	}
	if err != nil {
		if oldErr == nil {
			if rerr := r.rollBack(context.WithoutCancel(ctx), w.Lease, old); rerr != nil {
				err = errors.Join(err, fmt.Errorf("the old version could not run again either: %w", rerr))
			}
		}
		return runtime.LeaseStatus{Lease: w.Lease}, err
	}
	return r.Status(ctx, w.Lease)
}

// settle waits runtime.UpdateSettle and fails when a replica of the new
// version stopped or restarted meanwhile, saying how and with its last
// lines (a job's replica that exited 0 is done, not failed).
func (r *Runtime) settle(ctx context.Context, l runtime.LeaseRef, g sdl.ManifestGroup) error {
	hash := g.Hash()
	deadline := time.Now().Add(runtime.UpdateSettle)
	for {
		pods, err := r.leasePods(ctx, l)
		if err != nil {
			return err
		}
		for _, p := range pods {
			if p.Annotations[AnnotationManifest] != hash || len(p.Status.ContainerStatuses) == 0 {
				continue
			}
			cs := p.Status.ContainerStatuses[0]
			t := cs.State.Terminated
			if t == nil && cs.RestartCount == 0 {
				continue
			}
			if t != nil && t.ExitCode == 0 && p.Spec.RestartPolicy == corev1.RestartPolicyNever {
				continue
			}
			why := "crashed and was restarted " + strconv.Itoa(int(cs.RestartCount)) + " times"
			if last := cs.LastTerminationState.Terminated; last != nil {
				t = last
			}
			if t != nil {
				why = fmt.Sprintf("exited with code %d", t.ExitCode)
				if t.Reason == "OOMKilled" {
					why += " (out of memory)"
				}
			}
			var tail strings.Builder
			lines := int64(5)
			if rc, err := r.api.pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &lines, Previous: cs.RestartCount > 0 && cs.State.Terminated == nil}).Stream(ctx); err == nil {
				b, _ := io.ReadAll(io.LimitReader(rc, 512))
				_ = rc.Close()
				tail.WriteString(strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", " | ")), " "))
			}
			if tail.Len() > 0 {
				why += "; last output: " + tail.String()
			}
			return fmt.Errorf("service %q replica %s %s", p.Annotations[AnnotationService], p.Annotations[replicaAnnotation], why)
		}
		if time.Now().After(deadline) {
			return nil
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// rollBack puts the old version's objects back and deletes the pods of
// any other version (a StatefulSet waits forever on a broken pod), then
// waits for the old version to run. The old version's private images keep
// their pull secrets: nothing removes them in between.
func (r *Runtime) rollBack(ctx context.Context, l runtime.LeaseRef, old sdl.ManifestGroup) error {
	if err := r.write(ctx, runtime.Workload{Lease: l, Group: old}, true); err != nil {
		return err
	}
	pods, err := r.leasePods(ctx, l)
	if err != nil {
		return err
	}
	for _, p := range pods {
		if p.Annotations[AnnotationManifest] != old.Hash() {
			if err := r.api.pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	return r.waitRunning(ctx, namespace(r.opts.Provider, l), old, nil)
}

// apply writes the group's objects and waits for its replicas.
func (r *Runtime) apply(ctx context.Context, w runtime.Workload) error {
	if err := r.write(ctx, w, false); err != nil {
		return err
	}
	return r.waitRunning(ctx, namespace(r.opts.Provider, w.Lease), w.Group, w.ImagesDue)
}

// write creates or replaces the group's objects: what the group no longer
// has goes first (its node ports and claims free the quota), then the
// quota and policies, so that no pod ever runs without them, then the
// rest. rollBack writes an older version (see clusterView.rollBack).
func (r *Runtime) write(ctx context.Context, w runtime.Workload, rollBack bool) error {
	nodes, err := r.api.nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	view := viewOf(nodes.Items)
	view.rollBack = rollBack
	objs, err := r.buildLease(w.Lease, w.Group, w.GPUs, view)
	if err != nil {
		return err
	}
	ns := objs.Namespace.Name
	if err := applyNamespace(ctx, r.api.namespaces(), objs.Namespace); err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	if err := r.prune(ctx, ns, objs, !rollBack); err != nil {
		return err
	}
	// Quota and policies first: no pod ever runs without them.
	if err := upsert(ctx, r.api.quotas(ns), objs.Quota); err != nil {
		return fmt.Errorf("resource quota: %w", err)
	}
	for _, p := range objs.Policies {
		if err := upsert(ctx, r.api.networkPolicies(ns), p); err != nil {
			return fmt.Errorf("network policy %s: %w", p.Name, err)
		}
	}
	for _, s := range objs.Secrets {
		if err := upsert(ctx, r.api.secrets(ns), s); err != nil {
			return fmt.Errorf("pull secret: %w", err)
		}
	}
	for _, s := range objs.Services {
		if err := r.applyService(ctx, s); err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
	}
	for _, d := range objs.Deployments {
		if err := upsert(ctx, r.api.deployments(ns), d); err != nil {
			return classifyCreate(fmt.Errorf("deployment %s: %w", d.Name, err))
		}
	}
	for _, st := range objs.StatefulSets {
		if err := upsert(ctx, r.api.statefulSets(ns), st); err != nil {
			return classifyCreate(fmt.Errorf("stateful set %s: %w", st.Name, err))
		}
	}
	for _, j := range objs.Jobs {
		if err := r.applyJob(ctx, j); err != nil {
			return classifyCreate(fmt.Errorf("job %s: %w", j.Name, err))
		}
	}
	return nil
}

// classifyCreate marks what the API refused in the tenant's workload as
// the tenant's fault.
func classifyCreate(err error) error {
	if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
		return fmt.Errorf("%w: %v", runtime.ErrWorkloadInvalid, err)
	}
	return err
}

// upsert creates obj, or replaces the object of its name.
func upsert[P metav1.Object](ctx context.Context, c writer[P], obj P) error {
	_, err := c.Create(ctx, obj, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	// A controller may write the object (its status) between the read
	// and the update: the update then conflicts, and is tried again on a
	// fresh read.
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := c.Get(ctx, obj.GetName(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		obj.SetResourceVersion(cur.GetResourceVersion())
		_, err = c.Update(ctx, obj, metav1.UpdateOptions{})
		return err
	})
}

func applyNamespace(ctx context.Context, c writer[*corev1.Namespace], ns *corev1.Namespace) error {
	cur, err := c.Get(ctx, ns.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.Create(ctx, ns, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if cur.DeletionTimestamp != nil {
		return fmt.Errorf("namespace %s is being deleted", ns.Name)
	}
	if cur.Annotations[AnnotationLease] != ns.Annotations[AnnotationLease] || cur.Labels[LabelProvider] != ns.Labels[LabelProvider] {
		return fmt.Errorf("namespace %s exists and is not this lease's (it is %q of %q): refusing to touch it", ns.Name, cur.Annotations[AnnotationLease], cur.Labels[LabelProvider])
	}
	cur.Labels, cur.Annotations = ns.Labels, ns.Annotations
	_, err = c.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// applyService keeps an existing service's addresses and node ports: a
// tenant's URIs do not move with an update.
func (r *Runtime) applyService(ctx context.Context, s *corev1.Service) error {
	c := r.api.services(s.Namespace)
	cur, err := c.Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = c.Create(ctx, s, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if cur.Spec.Type != s.Spec.Type {
		if err := c.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		_, err = c.Create(ctx, s, metav1.CreateOptions{})
		return err
	}
	s.ResourceVersion = cur.ResourceVersion
	s.Spec.ClusterIP, s.Spec.ClusterIPs = cur.Spec.ClusterIP, cur.Spec.ClusterIPs
	for i := range s.Spec.Ports {
		for _, p := range cur.Spec.Ports {
			if p.Port == s.Spec.Ports[i].Port && p.Protocol == s.Spec.Ports[i].Protocol {
				s.Spec.Ports[i].NodePort = p.NodePort
			}
		}
	}
	_, err = c.Update(ctx, s, metav1.UpdateOptions{})
	return err
}

// applyJob creates a job; one of another version (a job's template cannot
// change) is deleted first.
func (r *Runtime) applyJob(ctx context.Context, j *batchv1.Job) error {
	c := r.api.jobs(j.Namespace)
	cur, err := c.Get(ctx, j.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return err
	case cur.Spec.Template.Annotations[AnnotationManifest] == j.Spec.Template.Annotations[AnnotationManifest]:
		return nil
	default:
		if err := c.Delete(ctx, j.Name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, r.opts.DeployTimeout)
		defer cancel()
		for { // the name is free once the old job and its pods are gone
			if _, err := c.Get(wctx, j.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				break
			}
			if err := sleep(wctx, 500*time.Millisecond); err != nil {
				return fmt.Errorf("the job's old version is still there: %w", err)
			}
		}
	}
	_, err = c.Create(ctx, j, metav1.CreateOptions{})
	return err
}

// prune deletes the lease's workloads, services, policies and (with
// secrets) pull secrets that the group no longer has: an update renamed a
// service, made a port local, dropped a private image.
func (r *Runtime) prune(ctx context.Context, ns string, objs *leaseObjects, secrets bool) error {
	mine, plain := listMine(r.opts.Provider, 0), metav1.DeleteOptions{}
	if err := pruneKind(ctx, r.api.deployments(ns), mine, namesOf(objs.Deployments), plain); err != nil {
		return err
	}
	if err := pruneKind(ctx, r.api.statefulSets(ns), mine, namesOf(objs.StatefulSets), plain); err != nil {
		return err
	}
	if err := pruneKind(ctx, r.api.jobs(ns), mine, namesOf(objs.Jobs), metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)}); err != nil {
		return err
	}
	if err := pruneKind(ctx, r.api.networkPolicies(ns), mine, namesOf(objs.Policies), plain); err != nil {
		return err
	}
	if secrets {
		if err := pruneKind(ctx, r.api.secrets(ns), mine, namesOf(objs.Secrets), plain); err != nil {
			return err
		}
	}
	return pruneKind(ctx, r.api.services(ns), mine, namesOf(objs.Services), plain)
}

// pruneKind deletes the objects of one kind that mine lists and keep does
// not name.
func pruneKind[P metav1.Object, L k8sruntime.Object](ctx context.Context, c objects[P, L], mine metav1.ListOptions, keep map[string]bool, del metav1.DeleteOptions) error {
	list, err := c.List(ctx, mine)
	if err != nil {
		return err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return err
	}
	for _, it := range items {
		o, err := meta.Accessor(it)
		if err != nil {
			return err
		}
		if keep[o.GetName()] {
			continue
		}
		if err := c.Delete(ctx, o.GetName(), del); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// namesOf is the set of the objects' names.
func namesOf[P metav1.Object](objs []P) map[string]bool {
	out := make(map[string]bool, len(objs))
	for _, o := range objs {
		out[o.GetName()] = true
	}
	return out
}

// Waiting reasons of a container that say why it will not run.
var (
	imageReasons    = map[string]bool{"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true}
	workloadReasons = map[string]bool{"CreateContainerConfigError": true, "CreateContainerError": true, "RunContainerError": true}
	startReasons    = map[string]bool{"StartError": true, "ContainerCannotRun": true}
)

// waitRunning waits until every service of g has its replicas of this
// version running (a job's: started, or already ended), or finds why they
// will not. Once due closes (nil: never), a pod whose node still pulls its
// image fails the wait as the tenant's (runtime.Workload.ImagesDue).
func (r *Runtime) waitRunning(ctx context.Context, ns string, g sdl.ManifestGroup, due <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.DeployTimeout)
	defer cancel()
	hash := g.Hash()
	unschedulable := map[string]time.Time{}
	imagesDue := false
	for {
		pods, err := r.api.pods(ns).List(ctx, listMine(r.opts.Provider, 0))
		if err != nil {
			return fmt.Errorf("list pods: %w", err)
		}
		started := map[string]uint32{}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil || p.Annotations[AnnotationManifest] != hash {
				continue
			}
			svc := p.Annotations[AnnotationService]
			if err := podFailure(p, svc); err != nil {
				return err
			}
			if imagesDue {
				if img := podAwaitsImage(p); img != "" {
					return fmt.Errorf("%w: service %q, image %s: the registry had not sent it by the time the lease's start deadline drew near", runtime.ErrImageUnavailable, svc, img)
				}
			}
			if c := podScheduleBlocked(p); c != "" {
				since, ok := unschedulable[p.Name]
				if !ok {
					unschedulable[p.Name] = time.Now()
				} else if time.Since(since) > r.opts.ScheduleTimeout {
					err := fmt.Errorf("%s of service %q cannot be placed on any node: %s", p.Name, svc, c)
					if gpuRequested(p) {
						err = fmt.Errorf("%w: %v", runtime.ErrGPUUnavailable, err)
					}
					return err
				}
			}
			if podStarted(p) {
				started[svc]++
			}
		}
		done := true
		for _, s := range g.Services {
			if started[s.Name] < s.Count {
				done = false
			}
		}
		if done {
			return nil
		}
		t := time.NewTimer(500 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("replicas of lease namespace %s not running within %s: %w", ns, r.opts.DeployTimeout, ctx.Err())
		case <-due:
			imagesDue, due = true, nil // looked at once more, at once
			t.Stop()
		case <-t.C:
		}
	}
}

// podAwaitsImage is the image a container of the pod still waits for,
// the pod being otherwise ready to start its containers (placed, its
// volumes mounted, its sandbox and network up: all the provider's part
// done), or "". The containers have no init containers to wait for.
func podAwaitsImage(p *corev1.Pod) string {
	ready := false
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReadyToStartContainers && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		return ""
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason == "ContainerCreating" && cs.ImageID == "" {
			return cs.Image
		}
	}
	return ""
}

// podFailure is why a pod's container will not run, when it says so.
func podFailure(p *corev1.Pod, svc string) error {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			switch {
			case imageReasons[w.Reason]:
				return fmt.Errorf("%w: service %q, image %s: %s: %s", runtime.ErrImageUnavailable, svc, cs.Image, w.Reason, w.Message)
			case workloadReasons[w.Reason]:
				return fmt.Errorf("%w: service %q: %s: %s", runtime.ErrWorkloadInvalid, svc, w.Reason, w.Message)
			}
		}
		for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
			if t != nil && startReasons[t.Reason] {
				return fmt.Errorf("%w: service %q: the command cannot run: %s", runtime.ErrWorkloadInvalid, svc, t.Message)
			}
		}
	}
	return nil
}

// podScheduleBlocked is the scheduler's reason when the pod fits no node.
func podScheduleBlocked(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.Message
		}
	}
	return ""
}

// podStarted: its container runs, or ran and ended.
func podStarted(p *corev1.Pod) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running != nil || (cs.State.Terminated != nil && !cs.State.Terminated.StartedAt.IsZero()) {
			return true
		}
	}
	return false
}

func gpuRequested(p *corev1.Pod) bool {
	for _, c := range p.Spec.Containers {
		if q, ok := c.Resources.Requests[ResourceGPU]; ok && !q.IsZero() {
			return true
		}
	}
	return false
}

func listMine(provider string, limit int64) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: selectorOf(provider), Limit: limit}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
