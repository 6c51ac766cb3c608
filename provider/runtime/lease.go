package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// LeaseRef identifies a lease: it is the chain's lease id (x/market's
// BidID: the order's owner and sequence numbers, and the provider that won
// it), the one lease-id type of the chain, the daemon, the runtime and the
// tenant.
type LeaseRef = markettypes.BidID

// leaseName is "owner/dseq/gseq/oseq" (OrderID.Name), the value of the
// gpunet.lease label and the key of List's map.
func leaseName(l LeaseRef) string { return l.Order.Name() }

// Labels on every container and network the runtime creates.
const (
	LabelProvider = "gpunet.provider"
	LabelOwner    = "gpunet.owner"
	LabelDSeq     = "gpunet.dseq"
	LabelGSeq     = "gpunet.gseq"
	LabelOSeq     = "gpunet.oseq"
	LabelLease    = "gpunet.lease"
	LabelGroup    = "gpunet.group"
	LabelService  = "gpunet.service"
	LabelReplica  = "gpunet.replica"
	// LabelManifest is the hash of the manifest group a container runs
	// (sdl.ManifestGroup.Hash): an update tells old from new by it.
	LabelManifest = "gpunet.manifest"
	// LabelShared marks the provider's shared network (sharedNetworkName),
	// which belongs to no lease.
	LabelShared = "gpunet.shared"
)

// IDLabels name a lease of a provider field by field: values Kubernetes
// labels can hold too (the lease name's slashes they cannot).
func IDLabels(provider string, l LeaseRef) map[string]string {
	return map[string]string{
		LabelProvider: provider,
		LabelOwner:    l.Order.Owner,
		LabelDSeq:     strconv.FormatUint(l.Order.Dseq, 10),
		LabelGSeq:     strconv.FormatUint(uint64(l.Order.Gseq), 10),
		LabelOSeq:     strconv.FormatUint(uint64(l.Order.Oseq), 10),
	}
}

// leaseLabels are the labels that tie an object to a lease of a provider.
func leaseLabels(provider string, l LeaseRef) map[string]string {
	labels := IDLabels(provider, l)
	labels[LabelLease] = leaseName(l)
	return labels
}

// replicaLabels are leaseLabels plus the group, service and replica index.
func replicaLabels(provider string, l LeaseRef, group, service string, replica int) map[string]string {
	labels := leaseLabels(provider, l)
	labels[LabelGroup] = group
	labels[LabelService] = service
	labels[LabelReplica] = strconv.Itoa(replica)
	return labels
}

// leaseFromLabels reads a LeaseRef back from an object's labels; ok is false
// when a label is missing or malformed (an object someone else labelled).
func leaseFromLabels(labels map[string]string) (LeaseRef, bool) {
	return LeaseFromIDLabels(labels, labels[LabelLease])
}

// LeaseFromIDLabels reads a lease back from IDLabels and the lease's whole
// name kept beside them; ok is false when one is missing or malformed or
// they disagree.
func LeaseFromIDLabels(labels map[string]string, name string) (LeaseRef, bool) {
	dseq, err1 := strconv.ParseUint(labels[LabelDSeq], 10, 64)
	gseq, err2 := strconv.ParseUint(labels[LabelGSeq], 10, 32)
	oseq, err3 := strconv.ParseUint(labels[LabelOSeq], 10, 32)
	l := LeaseRef{Order: markettypes.OrderID{Owner: labels[LabelOwner], Dseq: dseq, Gseq: uint32(gseq), Oseq: uint32(oseq)}, Provider: labels[LabelProvider]}
	if err1 != nil || err2 != nil || err3 != nil || l.Order.Owner == "" || name != leaseName(l) {
		return LeaseRef{}, false
	}
	return l, true
}

// leaseHash is a short, stable name fragment for a lease of a provider. The
// provider is part of it so that two providers sharing one engine (tests,
// a demo) never collide on names.
func leaseHash(provider string, l LeaseRef) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + leaseName(l)))
	return hex.EncodeToString(sum[:6])
}

// networkName is the lease's bridge network: "gpunet-<hash>".
func networkName(provider string, l LeaseRef) string {
	return "gpunet-" + leaseHash(provider, l)
}

// sharedNetworkName is the provider's network for single-container leases:
// a bridge with inter-container traffic off, so its containers reach the
// internet but not each other. The lease pool is part of the name: after
// runtime.lease_subnets changes, new leases get a network inside the new
// pool, which the egress filter covers.
func sharedNetworkName(provider, pool string) string {
	sum := sha256.Sum256([]byte(provider + "\x00" + pool))
	return "gpunet-" + hex.EncodeToString(sum[:6]) + "-shared"
}

// containerName is "gpunet-<hash>-<service>-<replica>", with the service
// name reduced to the characters Docker accepts in names.
func containerName(provider string, l LeaseRef, service string, replica int) string {
	return fmt.Sprintf("gpunet-%s-%s-%d", leaseHash(provider, l), sanitizeName(service), replica)
}

// sanitizeName lowercases s and replaces every character outside
// [a-z0-9_.-] with '-'. Docker names are [a-zA-Z0-9][a-zA-Z0-9_.-]*; the
// "gpunet-<hash>-" prefix already supplies the leading alphanumeric.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "svc"
	}
	return b.String()
}

// replicaKey is the "service-replica" prefix of log lines.
func replicaKey(service string, replica int) string {
	return fmt.Sprintf("%s-%d", service, replica)
}
