// Package runtime runs lease workloads as Docker containers through the
// Docker Engine API.
//
// It owns everything a provider puts on its Docker engine for a lease: one
// container per service replica and one bridge network per lease, all
// labelled with the provider and the lease so that a restarted daemon can
// find them again (List) and reconcile them with the chain. Containers run
// unprivileged with every capability dropped and no-new-privileges, with
// the CPU, memory and pids limits of the manifest, and GPUs by NVML UUID
// through the engine's "nvidia" device driver.
//
// Storage limits (ManifestResource.StorageBytes) are not enforced: the
// overlay2 storage driver can only cap a container's writable layer on
// xfs with project quotas, which provider hosts are not required to have.
package runtime
