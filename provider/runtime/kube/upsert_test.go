package kube

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// TestUpsertRetriesAConflict: the StatefulSet controller writes a set's
// status between upsert's read and its update; the update conflicts once
// and upsert tries again on a fresh read instead of failing the update
// (or a rollback) of the lease.
func TestUpsertRetriesAConflict(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewSimpleClientset()
	sets := cs.AppsV1().StatefulSets("ns")
	if _, err := sets.Create(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	conflicts := 0
	cs.PrependReactor("update", "statefulsets", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		if conflicts == 0 {
			conflicts++
			return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "apps", Resource: "statefulsets"}, "app", nil)
		}
		return false, nil, nil
	})
	want := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", Labels: map[string]string{"v": "2"}}}
	if err := upsert(ctx, sets, want); err != nil {
		t.Fatalf("upsert after a conflict: %v", err)
	}
	got, err := sets.Get(ctx, "app", metav1.GetOptions{})
	if err != nil || got.Labels["v"] != "2" || conflicts != 1 {
		t.Fatalf("after upsert: %v %v, %d conflicts; want the new labels after one conflict", got.Labels, err, conflicts)
	}
}

// TestPruneDeletesWhatTheGroupNoLongerHas: an update's prune deletes this
// provider's workloads, policies, services and (when asked) pull secrets
// the new group does not name, jobs in the background, and leaves what it
// names and every object of another provider in the namespace.
func TestPruneDeletesWhatTheGroupNoLongerHas(t *testing.T) {
	ctx := context.Background()
	ns := "ns"
	mine := map[string]string{LabelProvider: testProvider}
	theirs := map[string]string{LabelProvider: "gpunet1other"}
	om := func(name string, labels map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}
	}
	cs := fake.NewSimpleClientset(
		&appsv1.Deployment{ObjectMeta: om("web", mine)}, &appsv1.Deployment{ObjectMeta: om("old", mine)}, &appsv1.Deployment{ObjectMeta: om("foreign", theirs)},
		&appsv1.StatefulSet{ObjectMeta: om("db", mine)},
		&batchv1.Job{ObjectMeta: om("batch", mine)},
		&networkingv1.NetworkPolicy{ObjectMeta: om("deny", mine)}, &networkingv1.NetworkPolicy{ObjectMeta: om("stale", mine)},
		&corev1.Secret{ObjectMeta: om("web--pull", mine)},
		&corev1.Service{ObjectMeta: om("web", mine)}, &corev1.Service{ObjectMeta: om("old", mine)},
	)
	var jobDeletes []metav1.DeleteOptions
	cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		jobDeletes = append(jobDeletes, a.(k8stesting.DeleteActionImpl).DeleteOptions)
		return false, nil, nil
	})
	r := testRuntime()
	r.api = clientsetCluster{cs}
	keep := &leaseObjects{
		Deployments: []*appsv1.Deployment{{ObjectMeta: om("web", mine)}},
		Policies:    []*networkingv1.NetworkPolicy{{ObjectMeta: om("deny", mine)}},
		Services:    []*corev1.Service{{ObjectMeta: om("web", mine)}},
	}
	names := func() []string {
		var out []string
		add := func(kind string, list k8sruntime.Object, err error) {
			if err != nil {
				t.Fatal(err)
			}
			items, _ := meta.ExtractList(list)
			for _, it := range items {
				o, _ := meta.Accessor(it)
				out = append(out, kind+"/"+o.GetName())
			}
		}
		d, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		add("deployment", d, err)
		st, err := cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
		add("statefulset", st, err)
		j, err := cs.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		add("job", j, err)
		p, err := cs.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
		add("policy", p, err)
		x, err := cs.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		add("secret", x, err)
		s, err := cs.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		add("service", s, err)
		return out
	}

	if err := r.prune(ctx, ns, keep, false); err != nil {
		t.Fatal(err)
	}
	want := "deployment/foreign deployment/web policy/deny secret/web--pull service/web"
	if got := strings.Join(names(), " "); got != want {
		t.Errorf("after prune without secrets: %s\nwant %s", got, want)
	}
	if len(jobDeletes) != 1 || jobDeletes[0].PropagationPolicy == nil || *jobDeletes[0].PropagationPolicy != metav1.DeletePropagationBackground {
		t.Errorf("job deletes %+v, want one in the background (its pods go with it)", jobDeletes)
	}
	if err := r.prune(ctx, ns, keep, true); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(names(), " "), "deployment/foreign deployment/web policy/deny service/web"; got != want {
		t.Errorf("after prune with secrets: %s\nwant %s", got, want)
	}
}
