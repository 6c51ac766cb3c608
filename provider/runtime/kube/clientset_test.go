package kube

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/watchlist"
)

// clientsetCluster is cluster over a client-go clientset: the fake one in
// unit tests.
type clientsetCluster struct{ cs kubernetes.Interface }

// IsWatchListSemanticsUnSupported passes on what the clientset says of
// streamed initial lists (the fake one cannot stream them), as client-go's
// informers ask the clientset.
func (c clientsetCluster) IsWatchListSemanticsUnSupported() bool {
	return watchlist.DoesClientNotSupportWatchListSemantics(c.cs)
}

func (c clientsetCluster) namespaces() objects[*corev1.Namespace, *corev1.NamespaceList] {
	return c.cs.CoreV1().Namespaces()
}

func (c clientsetCluster) nodes() objects[*corev1.Node, *corev1.NodeList] {
	return c.cs.CoreV1().Nodes()
}
func (c clientsetCluster) pods(ns string) podObjects { return c.cs.CoreV1().Pods(ns) }

func (c clientsetCluster) services(ns string) objects[*corev1.Service, *corev1.ServiceList] {
	return c.cs.CoreV1().Services(ns)
}

func (c clientsetCluster) secrets(ns string) objects[*corev1.Secret, *corev1.SecretList] {
	return c.cs.CoreV1().Secrets(ns)
}

func (c clientsetCluster) quotas(ns string) objects[*corev1.ResourceQuota, *corev1.ResourceQuotaList] {
	return c.cs.CoreV1().ResourceQuotas(ns)
}

func (c clientsetCluster) deployments(ns string) objects[*appsv1.Deployment, *appsv1.DeploymentList] {
	return c.cs.AppsV1().Deployments(ns)
}

func (c clientsetCluster) statefulSets(ns string) objects[*appsv1.StatefulSet, *appsv1.StatefulSetList] {
	return c.cs.AppsV1().StatefulSets(ns)
}

func (c clientsetCluster) jobs(ns string) objects[*batchv1.Job, *batchv1.JobList] {
	return c.cs.BatchV1().Jobs(ns)
}

func (c clientsetCluster) networkPolicies(ns string) objects[*networkingv1.NetworkPolicy, *networkingv1.NetworkPolicyList] {
	return c.cs.NetworkingV1().NetworkPolicies(ns)
}

func (c clientsetCluster) core() rest.Interface { return c.cs.CoreV1().RESTClient() }

func (c clientsetCluster) serverVersion(context.Context) (*version.Info, error) {
	return c.cs.Discovery().ServerVersion()
}
