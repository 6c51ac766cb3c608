package kube

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gpunet/gpunet/provider/inventory"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Discover sizes what a cluster offers this provider: for each ready,
// schedulable node its allocatable CPU, memory, ephemeral storage and
// nvidia.com/gpu devices, less what pods that are not this provider's
// request there; GPU models from GPU feature discovery's product label,
// mapped to the chain's model names as NVML's are.
func Discover(ctx context.Context, kubeconfig, provider string) (inventory.Inventory, error) {
	cfg, err := RESTConfig(kubeconfig)
	if err != nil {
		return inventory.Inventory{}, err
	}
	api, err := newRESTCluster(cfg)
	if err != nil {
		return inventory.Inventory{}, err
	}
	return discoverWith(ctx, api, provider)
}

// discoverWith is Discover over a client.
func discoverWith(ctx context.Context, api cluster, provider string) (inventory.Inventory, error) {
	nodes, err := api.nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return inventory.Inventory{}, fmt.Errorf("list nodes: %w", err)
	}
	pods, err := api.pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "status.phase!=Succeeded,status.phase!=Failed"})
	if err != nil {
		return inventory.Inventory{}, fmt.Errorf("list pods: %w", err)
	}
	return clusterInventory(nodes.Items, pods.Items, provider), nil
}

// clusterInventory is Discover's arithmetic.
func clusterInventory(nodes []corev1.Node, pods []corev1.Pod, provider string) inventory.Inventory {
	used := map[string]corev1.ResourceList{} // by node: what others' pods request
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.Labels[LabelProvider] == provider || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		u := used[p.Spec.NodeName]
		if u == nil {
			u = corev1.ResourceList{}
			used[p.Spec.NodeName] = u
		}
		for _, c := range p.Spec.Containers {
			for name, q := range c.Resources.Requests {
				sum := u[name]
				sum.Add(q)
				u[name] = sum
			}
		}
	}
	sort.Slice(nodes, func(a, b int) bool { return nodes[a].Name < nodes[b].Name })
	inv := inventory.Inventory{Source: inventory.SourceKubernetes}
	free := func(n corev1.Node, name corev1.ResourceName, milli bool) uint64 {
		q, ok := n.Status.Allocatable[name]
		if !ok {
			return 0
		}
		have, take := q.Value(), used[n.Name][name]
		rest := have - take.Value()
		if milli {
			rest = q.MilliValue() - take.MilliValue()
		}
		if rest < 0 {
			return 0
		}
		return uint64(rest)
	}
	for _, n := range nodes {
		gpuOnly, blocked := taintsOf(n)
		if !nodeReady(n) || n.Spec.Unschedulable || blocked {
			continue
		}
		node := inventory.Node{
			Name: n.Name, GPUOnly: gpuOnly,
			CPUMillis:    free(n, corev1.ResourceCPU, true),
			MemoryBytes:  free(n, corev1.ResourceMemory, false),
			StorageBytes: free(n, corev1.ResourceEphemeralStorage, false),
		}
		product := n.Labels[LabelGPUProduct]
		mib, _ := strconv.ParseUint(n.Labels[LabelGPUMemory], 10, 64)
		for i := range free(n, ResourceGPU, false) {
			if product == "" {
				break // a device without a model is not offered: nobody could order it
			}
			g := inventory.GPU{
				Index: len(inv.GPUs), UUID: fmt.Sprintf("k8s:%s:%d", n.Name, i), Name: product,
				Model: providertypes.CanonicalGPUModel(product), MemoryMiB: mib, Healthy: true, Health: "ok",
			}
			inv.GPUs = append(inv.GPUs, g)
			node.GPUs = append(node.GPUs, g.UUID)
		}
		inv.CPUMillis += node.CPUMillis
		inv.MemoryBytes += node.MemoryBytes
		inv.StorageBytes += node.StorageBytes
		inv.Nodes = append(inv.Nodes, node)
	}
	return inv
}

// taintsOf reads a node's taints as lease pods meet them: GPU pods
// tolerate nvidia.com/gpu (the node is then for GPU pods only); any other
// taint that keeps pods off keeps leases off.
func taintsOf(n corev1.Node) (gpuOnly, blocked bool) {
	for _, t := range n.Spec.Taints {
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if t.Key == string(ResourceGPU) {
			gpuOnly = true
			continue
		}
		blocked = true
	}
	return gpuOnly, blocked
}

func nodeReady(n corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
