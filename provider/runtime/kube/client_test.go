package kube

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"

	"github.com/gpunet/gpunet/provider/runtime"
)

// fakeAPIServer answers the requests the runtime's own client makes, by
// path, and records them: what reaches it is what a real API server would
// be asked.
type fakeAPIServer struct {
	t    *testing.T
	mu   sync.Mutex
	seen []string // "METHOD path?query"
	// bodies are the decoded objects sent, by "METHOD path".
	bodies map[string]k8sruntime.Object
	// watched is the pod a watch of every namespace's pods sends.
	watched map[string]any
	// headers are the request headers, by "METHOD path".
	headers map[string]http.Header
}

// newFakeAPIServer answers a watch of every namespace's pods with watched
// (nil: a pod of no lease).
func newFakeAPIServer(t *testing.T, watched map[string]any) *fakeAPIServer {
	return &fakeAPIServer{t: t, bodies: map[string]k8sruntime.Object{}, headers: map[string]http.Header{}, watched: watched}
}

func (s *fakeAPIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.seen = append(s.seen, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	s.headers[r.Method+" "+r.URL.Path] = r.Header.Clone()
	s.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	if len(body) > 0 {
		obj, _, err := apiCodecs.UniversalDeserializer().Decode(body, nil, nil)
		if err != nil {
			s.t.Errorf("%s %s: undecodable body (%s): %v", r.Method, r.URL.Path, r.Header.Get("Content-Type"), err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.bodies[r.Method+" "+r.URL.Path] = obj
		s.mu.Unlock()
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	switch key := r.Method + " " + r.URL.Path; key {
	case "GET /version":
		reply(map[string]string{"gitVersion": "v1.99.0-fake"})
	case "GET /api/v1/namespaces":
		reply(map[string]any{"kind": "NamespaceList", "apiVersion": "v1", "metadata": map[string]any{},
			"items": []any{map[string]any{"metadata": map[string]any{"name": "gpunet-abc", "labels": map[string]string{LabelProvider: testProvider}}}}})
	case "POST /apis/apps/v1/namespaces/ns/deployments":
		d := s.bodies[key].(*appsv1.Deployment)
		d.Kind, d.APIVersion, d.UID = "Deployment", "apps/v1", "uid-1"
		reply(d)
	case "PUT /apis/apps/v1/namespaces/ns/statefulsets/app":
		st := s.bodies[key].(*appsv1.StatefulSet)
		st.Kind, st.APIVersion, st.ResourceVersion = "StatefulSet", "apps/v1", "8"
		reply(st)
	case "GET /api/v1/nodes":
		reply(map[string]any{"kind": "NodeList", "apiVersion": "v1", "metadata": map[string]any{}, "items": []any{map[string]any{"metadata": map[string]any{"name": "n1"}}}})
	case "GET /api/v1/namespaces/ns/secrets":
		reply(map[string]any{"kind": "SecretList", "apiVersion": "v1", "metadata": map[string]any{}, "items": []any{}})
	case "GET /api/v1/nodes/n1/proxy/stats/summary":
		reply(map[string]any{"pods": []any{map[string]any{"podRef": map[string]string{"name": "web-0", "namespace": "ns"},
			"cpu": map[string]any{"usageNanoCores": 25_000_000}, "memory": map[string]any{"workingSetBytes": 1 << 20}}}})
	case "DELETE /apis/batch/v1/namespaces/ns/jobs/j", "DELETE /apis/networking.k8s.io/v1/namespaces/ns/networkpolicies/p":
		reply(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Success"})
	case "GET /api/v1/namespaces/ns/pods/p/log":
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello from p\n")
	case "GET /api/v1/pods":
		if r.URL.Query().Get("watch") == "true" {
			w.Header().Set("Content-Type", "application/json")
			pod := s.watched
			if pod == nil {
				pod = map[string]any{"name": "p", "namespace": "ns", "resourceVersion": "2"}
			}
			enc := json.NewEncoder(w)
			if r.URL.Query().Get("sendInitialEvents") == "true" {
				// A streamed initial list of no pods: its end is a bookmark.
				_ = enc.Encode(map[string]any{"type": "BOOKMARK", "object": map[string]any{"kind": "Pod", "apiVersion": "v1",
					"metadata": map[string]any{"resourceVersion": "1", "annotations": map[string]string{"k8s.io/initial-events-end": "true"}}}})
			}
			_ = enc.Encode(map[string]any{"type": "ADDED", "object": map[string]any{"kind": "Pod", "apiVersion": "v1", "metadata": pod}})
			w.(http.Flusher).Flush()
			<-r.Context().Done() // a watch stays open until the client leaves
			return
		}
		reply(map[string]any{"kind": "PodList", "apiVersion": "v1", "metadata": map[string]any{"resourceVersion": "1"}, "items": []any{}})
	default:
		http.NotFound(w, r)
	}
}

// TestRESTClusterSpeaksTheAPI: the runtime's own client (client-go's
// generic typed client over the four groups it uses, no clientset) asks
// each group at its path, sends objects an API server can decode, passes
// options as query parameters and delete options as a body, and reads
// lists, logs, watches and the server's version back.
func TestRESTClusterSpeaksTheAPI(t *testing.T) {
	srv := newFakeAPIServer(t, nil)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	cfg := &rest.Config{Host: ts.URL, QPS: 50, Burst: 100}
	api, err := newRESTCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	r, err := newRuntime(ctx, api, cfg, Options{Provider: testProvider, NodeHost: "192.0.2.2"})
	if err != nil {
		t.Fatalf("newRuntime over the REST client: %v", err)
	}
	if r.api != api {
		t.Fatal("the runtime does not use the client it was given")
	}
	nss, err := api.namespaces().List(ctx, metav1.ListOptions{LabelSelector: selectorOf(testProvider), Limit: 7})
	if err != nil || len(nss.Items) != 1 || nss.Items[0].Name != "gpunet-abc" || nss.Items[0].Labels[LabelProvider] != testProvider {
		t.Fatalf("namespaces: %+v, %v", nss, err)
	}
	replicas := int32(2)
	d, err := api.deployments("ns").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas}}, metav1.CreateOptions{FieldManager: "gpunet"})
	if err != nil || d.Name != "web" || d.UID != "uid-1" || *d.Spec.Replicas != 2 {
		t.Fatalf("create deployment: %+v, %v", d, err)
	}
	if sent, ok := srv.bodies["POST /apis/apps/v1/namespaces/ns/deployments"].(*appsv1.Deployment); !ok || sent.Name != "web" || *sent.Spec.Replicas != 2 {
		t.Errorf("the server got %#v for the deployment", srv.bodies["POST /apis/apps/v1/namespaces/ns/deployments"])
	}
	if err := api.jobs("ns").Delete(ctx, "j", metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationBackground)}); err != nil {
		t.Fatalf("delete job: %v", err)
	}
	if o, ok := srv.bodies["DELETE /apis/batch/v1/namespaces/ns/jobs/j"].(*metav1.DeleteOptions); !ok || o.PropagationPolicy == nil || *o.PropagationPolicy != metav1.DeletePropagationBackground {
		t.Errorf("the job's delete options reached the server as %#v", srv.bodies["DELETE /apis/batch/v1/namespaces/ns/jobs/j"])
	}
	if err := api.networkPolicies("ns").Delete(ctx, "p", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete network policy: %v", err)
	}
	st, err := api.statefulSets("ns").Update(ctx, &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns", ResourceVersion: "7"}}, metav1.UpdateOptions{})
	if err != nil || st.ResourceVersion != "8" {
		t.Fatalf("update stateful set: %+v, %v", st, err)
	}
	if nodes, err := api.nodes().List(ctx, metav1.ListOptions{}); err != nil || len(nodes.Items) != 1 || nodes.Items[0].Name != "n1" {
		t.Fatalf("nodes: %+v, %v", nodes, err)
	}
	if xs, err := api.secrets("ns").List(ctx, metav1.ListOptions{LabelSelector: "a=b"}); err != nil || xs == nil {
		t.Fatalf("secrets: %+v, %v", xs, err)
	}
	if _, err := api.quotas("ns").Get(ctx, "quota", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get of a missing quota: %v, want not found", err)
	}
	usage, err := r.nodeSummary(ctx, "n1")
	if err != nil || usage["ns/web-0"].MemoryBytes != 1<<20 || usage["ns/web-0"].CPUPercent != 2.5 {
		t.Fatalf("node stats through the API server's node proxy: %+v, %v", usage, err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "ns"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web"}}}}
	u := r.execURL(pod, runtime.ExecRequest{Cmd: []string{"/bin/sh", "-c", "echo hi"}, Stdin: true, TTY: true})
	if want := ts.URL + "/api/v1/namespaces/ns/pods/web-0/exec?command=%2Fbin%2Fsh&command=-c&command=echo+hi&container=web&stdin=true&stdout=true&tty=true"; u.String() != want {
		t.Errorf("exec URL\n%s\nwant\n%s", u, want)
	}
	lines := int64(3)
	raw, err := api.pods("ns").GetLogs("p", &corev1.PodLogOptions{TailLines: &lines}).DoRaw(ctx)
	if err != nil || string(raw) != "hello from p\n" {
		t.Fatalf("logs: %q, %v", raw, err)
	}
	if _, err := api.services("ns").Get(ctx, "missing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get of a missing service: %v, want not found", err)
	}
	w, err := api.pods(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{LabelSelector: selectorOf(testProvider)})
	if err != nil {
		t.Fatalf("watch pods: %v", err)
	}
	select {
	case ev := <-w.ResultChan():
		if p, ok := ev.Object.(*corev1.Pod); !ok || p.Name != "p" || ev.Type != "ADDED" {
			t.Errorf("watch event %v %#v", ev.Type, ev.Object)
		}
	case <-ctx.Done():
		t.Fatal("no watch event")
	}
	w.Stop()

	want := []string{
		"GET /version?",
		"GET /api/v1/namespaces?labelSelector=gpunet.provider%3D" + testProvider + "&limit=1",
		"GET /api/v1/namespaces?labelSelector=gpunet.provider%3D" + testProvider + "&limit=7",
		"POST /apis/apps/v1/namespaces/ns/deployments?fieldManager=gpunet",
		"DELETE /apis/batch/v1/namespaces/ns/jobs/j?",
		"DELETE /apis/networking.k8s.io/v1/namespaces/ns/networkpolicies/p?",
		"PUT /apis/apps/v1/namespaces/ns/statefulsets/app?",
		"GET /api/v1/nodes?",
		"GET /api/v1/namespaces/ns/secrets?labelSelector=a%3Db",
		"GET /api/v1/namespaces/ns/resourcequotas/quota?",
		"GET /api/v1/nodes/n1/proxy/stats/summary?",
		"GET /api/v1/namespaces/ns/pods/p/log?tailLines=3",
		"GET /api/v1/namespaces/ns/services/missing?",
		"GET /api/v1/pods?labelSelector=gpunet.provider%3D" + testProvider + "&watch=true",
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if strings.Join(srv.seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(srv.seen, "\n"), strings.Join(want, "\n"))
	}
	// Objects go as protobuf and protobuf is asked for, as client-go's
	// own clients of these kinds do; the user agent is client-go's.
	post := srv.headers["POST /apis/apps/v1/namespaces/ns/deployments"]
	if post.Get("Content-Type") != "application/vnd.kubernetes.protobuf" || !strings.HasPrefix(post.Get("Accept"), "application/vnd.kubernetes.protobuf") {
		t.Errorf("create deployment sent Content-Type %q, Accept %q; want protobuf", post.Get("Content-Type"), post.Get("Accept"))
	}
	if ua := post.Get("User-Agent"); ua != rest.DefaultKubernetesUserAgent() {
		t.Errorf("User-Agent %q, want client-go's %q", ua, rest.DefaultKubernetesUserAgent())
	}
}

// TestWatchEventsOverTheRESTClient: the pod informer lists and watches
// through the runtime's own client, asking only for this provider's pods,
// and a lease's pod appearing is that lease's "created" event.
func TestWatchEventsOverTheRESTClient(t *testing.T) {
	ann := map[string]string{AnnotationLease: testLease.Order.Name(), AnnotationService: "web"}
	srv := newFakeAPIServer(t, map[string]any{
		"name": "web-0", "namespace": namespace(testProvider, testLease), "resourceVersion": "2", "uid": "u1",
		"labels": leaseLabels(testProvider, testLease), "annotations": ann,
		"creationTimestamp": "2026-11-28T10:00:00Z"})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	api, err := newRESTCluster(&rest.Config{Host: ts.URL})
	if err != nil {
		t.Fatal(err)
	}
	r := testRuntime()
	r.api, r.log = api, slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	type leaseEvent struct {
		l  runtime.LeaseRef
		ev runtime.ContainerEvent
	}
	got := make(chan leaseEvent, 1)
	go r.WatchEvents(ctx, func(l runtime.LeaseRef, ev runtime.ContainerEvent) {
		select {
		case got <- leaseEvent{l, ev}:
		default:
		}
	})
	select {
	case e := <-got:
		ev, lease := e.ev, e.l
		if ev.Kind != "created" || ev.Service != "web" || lease.Order != testLease.Order || !ev.Time.Equal(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("event %+v of lease %+v; want created, service web, of %+v at its creation time", ev, lease, testLease)
		}
	case <-ctx.Done():
		srv.mu.Lock()
		t.Fatalf("no event from the watched pod; requests:\n%s", strings.Join(srv.seen, "\n"))
	}
	cancel()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, req := range srv.seen {
		if !strings.HasPrefix(req, "GET /api/v1/pods?") || !strings.Contains(req, "labelSelector=gpunet.provider%3D"+testProvider) {
			t.Errorf("the informer asked %q; want only this provider's pods", req)
		}
	}
}

// TestWatchEventsOverAFakeClientset: the informer lists and watches the
// fake clientset plainly (it cannot stream an initial list), so a pod
// created after the start is a "created" event there as well.
func TestWatchEventsOverAFakeClientset(t *testing.T) {
	cs := fake.NewSimpleClientset()
	r := testRuntime()
	r.api, r.log = clientsetCluster{cs}, slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan runtime.ContainerEvent, 16)
	go r.WatchEvents(ctx, func(_ runtime.LeaseRef, ev runtime.ContainerEvent) {
		select {
		case got <- ev:
		default:
		}
	})
	ns := namespace(testProvider, testLease)
	ann := map[string]string{AnnotationLease: testLease.Order.Name(), AnnotationService: "web"}
	// Pods keep coming until one is told: one created before the informer
	// has listed is part of its initial list, which is not an event.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case ev := <-got:
			if ev.Kind != "created" || ev.Service != "web" {
				t.Errorf("event %+v, want created of service web", ev)
			}
			return
		case <-tick.C:
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-" + strconv.Itoa(i), Namespace: ns, Labels: leaseLabels(testProvider, testLease), Annotations: ann}}
			if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("no event from pods created on the fake clientset")
		}
	}
}

// TestListFollowsContinueTokens: List asks the API server for this
// provider's namespaces and pods in pages of 500 and follows each
// continue token to the last page, so a lease whose namespace or running
// pods come on a later page is neither missed (and torn down as closed
// while away) nor counted short (and taken for an ended job).
func TestListFollowsContinueTokens(t *testing.T) {
	other := runtime.LeaseRef{Order: testLease.Order, Provider: testProvider}
	other.Order.Dseq = 77
	meta := func(name string, l runtime.LeaseRef) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: namespace(testProvider, l), Labels: leaseLabels(testProvider, l),
			Annotations: map[string]string{AnnotationLease: l.Order.Name()}}
	}
	ns := func(l runtime.LeaseRef) corev1.Namespace {
		m := meta(namespace(testProvider, l), l)
		m.Namespace = ""
		return corev1.Namespace{ObjectMeta: m}
	}
	running := func(name string, l runtime.LeaseRef) corev1.Pod {
		return corev1.Pod{ObjectMeta: meta(name, l), Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}}
	}
	// Each list has two pages: the second is asked for with the first's token.
	pages := map[string][2]any{
		"/api/v1/namespaces": {
			corev1.NamespaceList{TypeMeta: metav1.TypeMeta{Kind: "NamespaceList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{Continue: "ns-page-2"},
				Items: []corev1.Namespace{ns(testLease)}},
			corev1.NamespaceList{TypeMeta: metav1.TypeMeta{Kind: "NamespaceList", APIVersion: "v1"}, Items: []corev1.Namespace{ns(other)}},
		},
		"/api/v1/pods": {
			corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{Continue: "pods-page-2"},
				Items: []corev1.Pod{running("web-0", testLease)}},
			corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: []corev1.Pod{running("web-1", testLease), running("job-0", other)}},
		},
	}
	tokens := map[string]string{"/api/v1/namespaces": "ns-page-2", "/api/v1/pods": "pods-page-2"}
	var mu sync.Mutex
	var seen []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		mu.Lock()
		seen = append(seen, r.URL.Path+"?continue="+q.Get("continue"))
		mu.Unlock()
		p, ok := pages[r.URL.Path]
		if !ok || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		if q.Get("limit") != "500" || q.Get("labelSelector") != selectorOf(testProvider) {
			t.Errorf("%s asked with limit %q and selector %q", r.URL.Path, q.Get("limit"), q.Get("labelSelector"))
		}
		var page any
		switch q.Get("continue") {
		case "":
			page = p[0]
		case tokens[r.URL.Path]:
			page = p[1]
		default:
			http.Error(w, "unknown continue token", http.StatusGone)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(page)
	}))
	defer ts.Close()
	api, err := newRESTCluster(&rest.Config{Host: ts.URL, QPS: 50, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	r := testRuntime()
	r.api, r.log = api, slog.New(slog.NewTextHandler(io.Discard, nil))

	held, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]runtime.Held{
		testLease.Order.Name(): {Ref: testLease, Running: 2, Counted: true},
		other.Order.Name():     {Ref: other, Running: 1, Counted: true},
	}
	if !reflect.DeepEqual(held, want) {
		t.Fatalf("List = %+v, want %+v", held, want)
	}
	wantSeen := []string{"/api/v1/namespaces?continue=", "/api/v1/namespaces?continue=ns-page-2", "/api/v1/pods?continue=", "/api/v1/pods?continue=pods-page-2"}
	if !reflect.DeepEqual(seen, wantSeen) {
		t.Errorf("requests %q, want %q", seen, wantSeen)
	}
}
