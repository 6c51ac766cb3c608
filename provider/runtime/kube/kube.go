// Package kube runs lease workloads on a Kubernetes cluster through its API
// (client-go's REST client): the daemon's second runtime, for a provider
// with many GPU hosts and one account.
//
// A lease is a namespace, labelled with the provider and the lease, that
// holds everything the lease runs: a Deployment per service (a Job per
// service for a job), a ClusterIP Service per service with ports and a
// NodePort Service for its global ports, a ResourceQuota that holds the
// namespace to what the order pays for, NetworkPolicies that keep other
// namespaces out and the provider's networks unreachable, and the pull
// secrets of private images. Pods run unprivileged with every capability
// dropped, no privilege escalation, the runtime's default seccomp profile
// and no service-account token; the namespace enforces the "baseline" Pod
// Security Standard besides. CPU, memory and ephemeral storage are requests
// equal to limits; GPUs are nvidia.com/gpu requests with node affinity on
// the model label NVIDIA's GPU feature discovery sets, mapped to the chain's
// model names by the same slug function as NVML's.
//
// A restarted daemon finds its leases again by the namespaces' labels
// (List), adopts the running ones as they are and removes the others.
package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gpunet/gpunet/provider/runtime"
)

// Labels and annotations on every object the runtime makes. Label values
// cannot hold the lease name's slashes: the lease is in labels field by
// field and whole in an annotation.
const (
	LabelProvider = runtime.LabelProvider
	LabelOwner    = runtime.LabelOwner
	LabelDSeq     = runtime.LabelDSeq
	LabelGSeq     = runtime.LabelGSeq
	LabelOSeq     = runtime.LabelOSeq
	LabelService  = runtime.LabelService
	// AnnotationLease is the lease's name (owner/dseq/gseq/oseq).
	AnnotationLease = runtime.LabelLease
	// AnnotationManifest is the hash of the manifest group a pod runs.
	AnnotationManifest = runtime.LabelManifest
	// AnnotationService is the service's name as the SDL spells it.
	AnnotationService = "gpunet.service-name"
	// AnnotationGroup is the group a lease runs (its JSON, credentials
	// left out): an update that fails goes back to it.
	AnnotationGroup = "gpunet.group"
)

// Node labels NVIDIA's GPU feature discovery sets, and the device
// plugin's resource.
const (
	LabelGPUProduct = "nvidia.com/gpu.product"
	LabelGPUMemory  = "nvidia.com/gpu.memory" // MiB
	ResourceGPU     = corev1.ResourceName("nvidia.com/gpu")
)

// Options configure a Runtime.
type Options struct {
	// Provider is the provider's address; every object gets the label
	// gpunet.provider=<Provider> and the runtime sees only those. Required.
	Provider string
	// Kubeconfig is the cluster's kubeconfig file; "" uses the in-cluster
	// service account, else $KUBECONFIG.
	Kubeconfig string
	// NodeHost is the address tenants reach NodePorts at (a node's, or a
	// load balancer's in front of the nodes). Required.
	NodeHost string
	// PullPolicy is the pods' image pull policy: IfNotPresent (default),
	// Always or Never.
	PullPolicy corev1.PullPolicy
	// RuntimeClass, when set, is the RuntimeClass every pod runs with (a
	// sandboxed runtime, say).
	RuntimeClass string
	// RunAsNonRoot refuses images whose user is root; ContainerUser
	// ("uid:gid") runs every container as that user instead.
	RunAsNonRoot  bool
	ContainerUser string
	// EgressAllow are CIDRs opened to leases besides the internet (the
	// provider's private ranges are closed).
	EgressAllow []string
	// Registries limits where images may come from.
	Registries runtime.RegistryPolicy
	// StorageClasses map the persistent storage classes offered to the
	// cluster's StorageClasses their volumes are claimed from.
	StorageClasses map[string]string
	// DeployTimeout bounds how long Deploy and Update wait for every
	// replica to run (default 5 min); ScheduleTimeout how long a pod may
	// stay unschedulable before Deploy gives up (default 2 min).
	DeployTimeout, ScheduleTimeout time.Duration
	// Logger receives one line per decision (default slog.Default()).
	Logger *slog.Logger
}

// Runtime runs leases on one Kubernetes cluster. It is safe for concurrent
// use.
type Runtime struct {
	api  cluster
	cfg  *rest.Config
	opts Options
	log  *slog.Logger
}

// New connects to the cluster and checks that it answers.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	if opts.Provider == "" {
		return nil, errors.New("kubernetes runtime: Options.Provider (the provider address) is required")
	}
	if opts.NodeHost == "" {
		return nil, errors.New("kubernetes runtime: Options.NodeHost (where tenants reach node ports) is required")
	}
	cfg, err := RESTConfig(opts.Kubeconfig)
	if err != nil {
		return nil, err
	}
	api, err := newRESTCluster(cfg)
	if err != nil {
		return nil, err
	}
	return newRuntime(ctx, api, cfg, opts)
}

// RESTConfig loads a kubeconfig file; "" means the in-cluster service
// account, else $KUBECONFIG.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" {
		if cfg, err = rest.InClusterConfig(); err != nil {
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
		}
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes config: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cfg.WarningHandler = rest.NoWarnings{} // the API's deprecation notes are for people at kubectl
	return cfg, nil
}

func newRuntime(ctx context.Context, api cluster, cfg *rest.Config, opts Options) (*Runtime, error) {
	if opts.PullPolicy == "" {
		opts.PullPolicy = corev1.PullIfNotPresent
	}
	if opts.DeployTimeout <= 0 {
		opts.DeployTimeout = 5 * time.Minute
	}
	if opts.ScheduleTimeout <= 0 {
		opts.ScheduleTimeout = 2 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Runtime{api: api, cfg: cfg, opts: opts, log: opts.Logger.With("runtime", "kubernetes")}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := api.serverVersion(pctx)
	if err != nil {
		return nil, fmt.Errorf("kubernetes API at %s does not answer: %w", cfg.Host, err)
	}
	if _, err := api.namespaces().List(pctx, listMine(opts.Provider, 1)); err != nil {
		return nil, fmt.Errorf("kubernetes API at %s: cannot list namespaces (see the RBAC the daemon needs in the README): %w", cfg.Host, err)
	}
	r.log.Info("kubernetes runtime ready", "api", cfg.Host, "server", v.GitVersion)
	return r, nil
}

// namespace is the lease's namespace: "gpunet-<hash>", 128 bits of the
// hash of the provider and the lease, so that neither two providers on
// one cluster nor a tenant grinding order names can land on another
// lease's namespace (which Deploy and Remove check besides).
func namespace(provider string, l runtime.LeaseRef) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + l.Order.Name()))
	return "gpunet-" + hex.EncodeToString(sum[:16])
}

// leaseLabels tie an object to a lease of a provider.
func leaseLabels(provider string, l runtime.LeaseRef) map[string]string {
	return runtime.IDLabels(provider, l)
}

// leaseOf reads a lease back from an object's labels and annotations; ok
// is false when one is missing or they disagree (someone else's object).
func leaseOf(labels, annotations map[string]string) (runtime.LeaseRef, bool) {
	return runtime.LeaseFromIDLabels(labels, annotations[AnnotationLease])
}

// objectName is a service's name as a Kubernetes object name (a DNS-1035
// label: what Service names must be): lower case, other characters and
// runs of them as one '-', a letter first, and a hash of the SDL name when
// any of that changed it, so two services never share a name. It never
// holds "--": the runtime's own objects beside a service's are named
// "<name>--global" and "<name>--pull", which no service can be named.
func objectName(service string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(service) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		} else if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if s != "" && (s[0] < 'a' || s[0] > 'z') {
		s = "s" + s
	}
	if len(s) > 40 {
		s = strings.Trim(s[:40], "-")
	}
	if s == service && s != "" {
		return s
	}
	sum := sha256.Sum256([]byte(service))
	if s == "" {
		return "svc-" + hex.EncodeToString(sum[:3])
	}
	return s + "-" + hex.EncodeToString(sum[:3])
}

// selectorOf is the label selector of this provider's objects.
func selectorOf(provider string) string { return LabelProvider + "=" + provider }
