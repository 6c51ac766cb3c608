package types

import "cosmossdk.io/collections"

const (
	// ModuleName is the name of x/audit.
	ModuleName = "audit"
	// StoreKey is the KV store key of x/audit.
	StoreKey = ModuleName
)

// Collection prefixes. Never renumber: they are the on-disk layout.
var (
	// AttributesKey holds (owner, auditor) → AuditedAttributes.
	AttributesKey = collections.NewPrefix(0)
	// ByAuditorKey indexes the same entries by (auditor, owner).
	ByAuditorKey = collections.NewPrefix(1)
)
