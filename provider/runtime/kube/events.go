package kube

import (
	"context"
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/gpunet/gpunet/provider/runtime"
)

// WatchEvents calls fn for each lifecycle event of this provider's pods
// (created, started, exited, oom, removed) until ctx ends. It follows the
// pods through an informer, which lists and watches again after the API
// server breaks the stream.
func (r *Runtime) WatchEvents(ctx context.Context, fn func(runtime.LeaseRef, runtime.ContainerEvent)) {
	pods := r.api.pods(metav1.NamespaceAll)
	mine := func(o metav1.ListOptions) metav1.ListOptions {
		o.LabelSelector = selectorOf(r.opts.Provider)
		return o
	}
	// Streamed initial lists (watch-list) unless the cluster's client says
	// it cannot (client-go's fake clientset), as client-go's own informers
	// decide.
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(&cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (k8sruntime.Object, error) {
			return pods.List(ctx, mine(o))
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return pods.Watch(ctx, mine(o))
		},
	}, r.api), &corev1.Pod{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	emit := func(p *corev1.Pod, ev runtime.ContainerEvent) {
		l, ok := leaseOf(p.Labels, p.Annotations)
		if !ok {
			return
		}
		ev.Service, ev.Manifest = p.Annotations[AnnotationService], p.Annotations[AnnotationManifest]
		ev.Replica = replicaOf(inf.GetIndexer(), p)
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		fn(l, ev)
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc: func(obj any, initial bool) {
			if p, ok := obj.(*corev1.Pod); ok && !initial {
				emit(p, runtime.ContainerEvent{Kind: "created", Time: p.CreationTimestamp.Time})
			}
		},
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(*corev1.Pod)
			n, ok2 := newObj.(*corev1.Pod)
			if !ok1 || !ok2 {
				return
			}
			for _, ev := range podEvents(o, n) {
				emit(n, ev)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if p, ok := obj.(*corev1.Pod); ok {
				emit(p, runtime.ContainerEvent{Kind: "removed"})
			}
		},
	})
	if err != nil {
		r.log.Error("pod events cannot be followed", "err", err)
		return
	}
	inf.Run(ctx.Done())
}

// podEvents are what changed between two versions of a pod's container.
func podEvents(o, n *corev1.Pod) []runtime.ContainerEvent {
	if len(n.Status.ContainerStatuses) == 0 {
		return nil
	}
	var oc corev1.ContainerStatus
	if len(o.Status.ContainerStatuses) > 0 {
		oc = o.Status.ContainerStatuses[0]
	}
	nc := n.Status.ContainerStatuses[0]
	final := n.Spec.RestartPolicy == corev1.RestartPolicyNever
	var out []runtime.ContainerEvent
	exited := func(t *corev1.ContainerStateTerminated, final bool) {
		if t.Reason == "OOMKilled" {
			out = append(out, runtime.ContainerEvent{Kind: "oom", Time: t.FinishedAt.Time})
		}
		out = append(out, runtime.ContainerEvent{Kind: "exited", Time: t.FinishedAt.Time, ExitCode: int(t.ExitCode), Final: final, Detail: t.Reason})
	}
	// A death shows as Terminated, then (restarted) as the last
	// termination of the next state; the old status tells whether it was
	// already told.
	told := func(t *corev1.ContainerStateTerminated) bool {
		o := oc.State.Terminated
		return o != nil && o.ContainerID == t.ContainerID && o.FinishedAt.Equal(&t.FinishedAt)
	}
	switch {
	case nc.RestartCount > oc.RestartCount && nc.LastTerminationState.Terminated != nil:
		if !told(nc.LastTerminationState.Terminated) {
			exited(nc.LastTerminationState.Terminated, false)
		}
	case nc.State.Terminated != nil && oc.State.Terminated == nil:
		exited(nc.State.Terminated, final)
	}
	if r := nc.State.Running; r != nil && (oc.State.Running == nil || !oc.State.Running.StartedAt.Equal(&r.StartedAt)) {
		out = append(out, runtime.ContainerEvent{Kind: "started", Time: r.StartedAt.Time})
	}
	return out
}

// replicaOf numbers p among its service's live pods, as Status does.
func replicaOf(idx cache.Indexer, p *corev1.Pod) int {
	objs, err := idx.ByIndex(cache.NamespaceIndex, p.Namespace)
	if err != nil {
		return 0
	}
	var pods []*corev1.Pod
	for _, o := range objs {
		q, ok := o.(*corev1.Pod)
		if ok && q.DeletionTimestamp == nil && q.Annotations[AnnotationService] == p.Annotations[AnnotationService] {
			pods = append(pods, q.DeepCopy())
		}
	}
	numberReplicas(pods)
	for _, q := range pods {
		if q.UID == p.UID {
			n, _ := strconv.Atoi(q.Annotations[replicaAnnotation])
			return n
		}
	}
	if v, ok := p.Annotations[jobIndexAnnotation]; ok {
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

// JobState reports whether every Job of the lease has completed or failed
// and, once they all have, the pods' exit codes (pods that ended while the
// daemon was down count). It does not wait: the daemon asks again when a
// pod's container exits (WatchEvents) or a reconcile finds none running.
// A job whose pod can never start has failed, though its Job has not.
func (r *Runtime) JobState(ctx context.Context, l runtime.LeaseRef) (runtime.JobResult, bool, error) {
	ns := namespace(r.opts.Provider, l)
	jobs, err := r.api.jobs(ns).List(ctx, listMine(r.opts.Provider, 0))
	if err != nil {
		return runtime.JobResult{}, false, fmt.Errorf("lease %s: list jobs: %w", l.Order.Name(), err)
	}
	if len(jobs.Items) == 0 {
		return runtime.JobResult{}, false, fmt.Errorf("%w %s", runtime.ErrLeaseNotFound, l.Order.Name())
	}
	pods, err := r.leasePods(ctx, l)
	if err != nil {
		return runtime.JobResult{}, false, err
	}
	ended, succeeded := true, true
	for _, j := range jobs.Items {
		switch jobOrPodsEnd(&j, pods) {
		case "":
			ended = false
		case batchv1.JobFailed:
			succeeded = false
		}
	}
	if !ended {
		for _, p := range pods {
			if err := podFailure(p, p.Annotations[AnnotationService]); err != nil {
				r.log.Warn("a job's pod cannot run", "lease", l.Order.Name(), "pod", p.Name, "err", err)
				return runtime.JobResult{Succeeded: false, ExitCodes: map[string]int{}}, true, nil
			}
		}
		return runtime.JobResult{}, false, nil
	}
	res := runtime.JobResult{Succeeded: succeeded, ExitCodes: map[string]int{}}
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil {
				res.ExitCodes[p.Name] = int(t.ExitCode)
				res.Succeeded = res.Succeeded && t.ExitCode == 0
			}
		}
	}
	return res, true, nil
}

// jobOrPodsEnd is Complete or Failed once the Job has ended, else "". The
// Job controller marks a Job ended a moment after its pods have, and the
// daemon asks when a pod's container exits. A Job here is never retried
// and has one pod per index, so its own pods say it first: one failed pod
// fails it, a succeeded pod for every completion completes it.
func jobOrPodsEnd(j *batchv1.Job, pods []*corev1.Pod) batchv1.JobConditionType {
	if end := jobEnd(j); end != "" {
		return end
	}
	done := 0
	for _, p := range pods {
		if owner := metav1.GetControllerOf(p); owner == nil || owner.UID != j.UID {
			continue
		}
		switch p.Status.Phase {
		case corev1.PodFailed:
			return batchv1.JobFailed
		case corev1.PodSucceeded:
			done++
		}
	}
	if j.Spec.Completions != nil && done >= int(*j.Spec.Completions) {
		return batchv1.JobComplete
	}
	return ""
}

// jobEnd is Complete or Failed once the job has ended, else "".
func jobEnd(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}
