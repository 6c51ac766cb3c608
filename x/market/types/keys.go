package types

import (
	"fmt"

	"cosmossdk.io/collections"
)

const (
	// ModuleName is x/market's name; its module account holds bid deposits.
	ModuleName = "market"
	StoreKey   = ModuleName
)

// Collection prefixes. Never renumber.
var (
	ParamsKey      = collections.NewPrefix(0)
	DeploymentsKey = collections.NewPrefix(1)
	OrdersKey      = collections.NewPrefix(2)
	// OpenOrdersKey held an index of open orders until v2: the expiry
	// queue holds exactly the open orders, so queries walk that instead.
	OpenOrdersKey = collections.NewPrefix(3)
	// AuctionQueueKey held each open order's auction until v4, beside its
	// expiry: OrderQueue (the former expiry queue's prefix) now holds one
	// entry per open order, at its next deadline.
	AuctionQueueKey     = collections.NewPrefix(4)
	OrderQueueKey       = collections.NewPrefix(5)
	BidsKey             = collections.NewPrefix(6)
	BidsByProviderKey   = collections.NewPrefix(7)
	LeasesKey           = collections.NewPrefix(8)
	LeasesByProviderKey = collections.NewPrefix(9)
	StartDeadlinesKey   = collections.NewPrefix(10)
	// NextDseqKey and NextBidSeqKey held stored counters until v2; dseqs
	// and bid seqs now come from per-block counters in the transient
	// store (see BlockSeq).
	NextDseqKey     = collections.NewPrefix(11)
	NextBidSeqKey   = collections.NewPrefix(12)
	DisputableKey   = collections.NewPrefix(13)
	DisputeQueueKey = collections.NewPrefix(14)
	ParkedKey       = collections.NewPrefix(15)
	// Attestations (by provider), DownLeases (by provider and lease) and
	// SilenceQueue (by deadline height) are the attestation state (v3).
	AttestationsKey = collections.NewPrefix(16)
	DownLeasesKey   = collections.NewPrefix(17)
	SilenceQueueKey = collections.NewPrefix(18)
)

// GroupOrder packs gseq and oseq into one key part.
func (id OrderID) GroupOrder() uint64 { return uint64(id.Gseq)<<32 | uint64(id.Oseq) }

// UnpackGroupOrder is the inverse of GroupOrder.
func UnpackGroupOrder(v uint64) (gseq, oseq uint32) { return uint32(v >> 32), uint32(v) }

// Name is "owner/dseq/gseq/oseq" for errors and logs.
func (id OrderID) Name() string {
	return fmt.Sprintf("%s/%d/%d/%d", id.Owner, id.Dseq, id.Gseq, id.Oseq)
}

// Name is "owner/dseq/gseq/oseq/provider" for errors and logs.
func (id BidID) Name() string { return id.Order.Name() + "/" + id.Provider }

// Dseq is the deployment sequence of the bid's order.
func (id BidID) Dseq() uint64 { return id.Order.Dseq }

// Transient-store keys of the per-block counters.
var (
	DseqCounterKey   = []byte{0}
	BidSeqCounterKey = []byte{1}
)

// BlockSeqBase is how many numbers one block can hand out from a per-block
// counter: the nth number of block h is h×BlockSeqBase + n. A dseq reads as
// its block height followed by four digits.
const BlockSeqBase = 10_000

// BlockOfSeq is the height whose block handed out seq.
func BlockOfSeq(seq uint64) int64 { return int64(seq / BlockSeqBase) }
