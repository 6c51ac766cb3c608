package kube

import (
	"context"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/gentype"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// The runtime talks to four API groups (core, apps, batch, networking)
// through client-go's generic typed client over a scheme of only those
// groups. client-go's clientset would register every API group the
// cluster serves and link a typed client for each: about 30 MB of the
// daemon's binary and 12 MB of its resident memory for objects it never
// touches.
var (
	apiScheme     = k8sruntime.NewScheme()
	apiCodecs     = serializer.NewCodecFactory(apiScheme)
	apiParameters = k8sruntime.NewParameterCodec(apiScheme)
)

func init() {
	for _, add := range []func(*k8sruntime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(apiScheme); err != nil {
			panic(err) // the groups' own registrations: cannot fail
		}
	}
	// Options (ListOptions, DeleteOptions...) as unversioned parameters.
	metav1.AddToGroupVersion(apiScheme, schema.GroupVersion{Version: "v1"})
}

// writer reads, creates and replaces objects of one kind (P, a pointer to
// the kind's type): what upsert needs.
type writer[P any] interface {
	Get(ctx context.Context, name string, o metav1.GetOptions) (P, error)
	Create(ctx context.Context, obj P, o metav1.CreateOptions) (P, error)
	Update(ctx context.Context, obj P, o metav1.UpdateOptions) (P, error)
}

// objects is the typed client of one kind of object (P) and its list (L):
// client-go's generic client in the daemon, its fake clientset's in unit
// tests.
type objects[P, L any] interface {
	writer[P]
	List(ctx context.Context, o metav1.ListOptions) (L, error)
	Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error)
	Delete(ctx context.Context, name string, o metav1.DeleteOptions) error
}

// podObjects adds the pods' log stream.
type podObjects interface {
	objects[*corev1.Pod, *corev1.PodList]
	GetLogs(name string, o *corev1.PodLogOptions) *rest.Request
}

// cluster is the part of the Kubernetes API the runtime uses.
type cluster interface {
	namespaces() objects[*corev1.Namespace, *corev1.NamespaceList]
	nodes() objects[*corev1.Node, *corev1.NodeList]
	pods(ns string) podObjects
	services(ns string) objects[*corev1.Service, *corev1.ServiceList]
	secrets(ns string) objects[*corev1.Secret, *corev1.SecretList]
	quotas(ns string) objects[*corev1.ResourceQuota, *corev1.ResourceQuotaList]
	deployments(ns string) objects[*appsv1.Deployment, *appsv1.DeploymentList]
	statefulSets(ns string) objects[*appsv1.StatefulSet, *appsv1.StatefulSetList]
	jobs(ns string) objects[*batchv1.Job, *batchv1.JobList]
	networkPolicies(ns string) objects[*networkingv1.NetworkPolicy, *networkingv1.NetworkPolicyList]
	// core is the core group's REST client (node proxy, pod exec).
	core() rest.Interface
	serverVersion(ctx context.Context) (*version.Info, error)
}

// restCluster is cluster over the API server, one REST client per group
// sharing one HTTP client and one rate limiter (as a clientset does).
type restCluster struct {
	coreC, appsC, batchC, netC rest.Interface
}

func newRESTCluster(cfg *rest.Config) (*restCluster, error) {
	c := *cfg
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	if c.RateLimiter == nil && c.QPS > 0 {
		if c.Burst <= 0 {
			return nil, fmt.Errorf("kubernetes client: burst must be positive when QPS is set")
		}
		c.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(c.QPS, c.Burst)
	}
	hc, err := rest.HTTPClientFor(&c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	group := func(gv schema.GroupVersion, apiPath string) (rest.Interface, error) {
		gc := c
		gc.GroupVersion, gc.APIPath = &gv, apiPath
		gc.NegotiatedSerializer = rest.CodecFactoryForGeneratedClient(apiScheme, apiCodecs).WithoutConversion()
		rc, err := rest.RESTClientForConfigAndClient(&gc, hc)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client for %s: %w", gv, err)
		}
		return rc, nil
	}
	var rc restCluster
	for _, g := range []struct {
		to   *rest.Interface
		gv   schema.GroupVersion
		path string
	}{
		{&rc.coreC, corev1.SchemeGroupVersion, "/api"},
		{&rc.appsC, appsv1.SchemeGroupVersion, "/apis"},
		{&rc.batchC, batchv1.SchemeGroupVersion, "/apis"},
		{&rc.netC, networkingv1.SchemeGroupVersion, "/apis"},
	} {
		if *g.to, err = group(g.gv, g.path); err != nil {
			return nil, err
		}
	}
	return &rc, nil
}

// typed is client-go's generic client of one kind in one namespace ("" for
// every namespace, or a cluster-wide kind), asking for protobuf as
// client-go's own clients of these kinds do.
func typed[T interface {
	*E
	k8sruntime.Object
	metav1.Object
}, L interface {
	*EL
	k8sruntime.Object
}, E, EL any](c rest.Interface, resource, ns string) *gentype.ClientWithList[T, L] {
	return gentype.NewClientWithList[T, L](resource, c, apiParameters, ns,
		func() T { return T(new(E)) }, func() L { return L(new(EL)) }, gentype.PrefersProtobuf[T]())
}

func (c *restCluster) namespaces() objects[*corev1.Namespace, *corev1.NamespaceList] {
	return typed[*corev1.Namespace, *corev1.NamespaceList](c.coreC, "namespaces", "")
}

func (c *restCluster) nodes() objects[*corev1.Node, *corev1.NodeList] {
	return typed[*corev1.Node, *corev1.NodeList](c.coreC, "nodes", "")
}

func (c *restCluster) pods(ns string) podObjects {
	return restPods{typed[*corev1.Pod, *corev1.PodList](c.coreC, "pods", ns)}
}

func (c *restCluster) services(ns string) objects[*corev1.Service, *corev1.ServiceList] {
	return typed[*corev1.Service, *corev1.ServiceList](c.coreC, "services", ns)
}

func (c *restCluster) secrets(ns string) objects[*corev1.Secret, *corev1.SecretList] {
	return typed[*corev1.Secret, *corev1.SecretList](c.coreC, "secrets", ns)
}

func (c *restCluster) quotas(ns string) objects[*corev1.ResourceQuota, *corev1.ResourceQuotaList] {
	return typed[*corev1.ResourceQuota, *corev1.ResourceQuotaList](c.coreC, "resourcequotas", ns)
}

func (c *restCluster) deployments(ns string) objects[*appsv1.Deployment, *appsv1.DeploymentList] {
	return typed[*appsv1.Deployment, *appsv1.DeploymentList](c.appsC, "deployments", ns)
}

func (c *restCluster) statefulSets(ns string) objects[*appsv1.StatefulSet, *appsv1.StatefulSetList] {
	return typed[*appsv1.StatefulSet, *appsv1.StatefulSetList](c.appsC, "statefulsets", ns)
}

func (c *restCluster) jobs(ns string) objects[*batchv1.Job, *batchv1.JobList] {
	return typed[*batchv1.Job, *batchv1.JobList](c.batchC, "jobs", ns)
}

func (c *restCluster) networkPolicies(ns string) objects[*networkingv1.NetworkPolicy, *networkingv1.NetworkPolicyList] {
	return typed[*networkingv1.NetworkPolicy, *networkingv1.NetworkPolicyList](c.netC, "networkpolicies", ns)
}

func (c *restCluster) core() rest.Interface { return c.coreC }

// serverVersion reads /version, as discovery does.
func (c *restCluster) serverVersion(ctx context.Context) (*version.Info, error) {
	raw, err := c.coreC.Get().AbsPath("/version").Do(ctx).Raw()
	if err != nil {
		return nil, err
	}
	var v version.Info
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("the API server's /version: %w", err)
	}
	return &v, nil
}

// restPods adds the log subresource to the pods' typed client.
type restPods struct {
	*gentype.ClientWithList[*corev1.Pod, *corev1.PodList]
}

func (p restPods) GetLogs(name string, o *corev1.PodLogOptions) *rest.Request {
	return p.GetClient().Get().Namespace(p.GetNamespace()).Name(name).Resource("pods").SubResource("log").VersionedParams(o, apiParameters)
}
