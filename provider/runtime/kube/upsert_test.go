package kube

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	if err := upsert(ctx, sets, want, statefulSetMeta); err != nil {
		t.Fatalf("upsert after a conflict: %v", err)
	}
	got, err := sets.Get(ctx, "app", metav1.GetOptions{})
	if err != nil || got.Labels["v"] != "2" || conflicts != 1 {
		t.Fatalf("after upsert: %v %v, %d conflicts; want the new labels after one conflict", got.Labels, err, conflicts)
	}
}
