package types

import (
	"fmt"

	"cosmossdk.io/collections"
)

const (
	// ModuleName is x/escrow's name; its module account holds every deposit
	// and every accrued but unwithdrawn payment.
	ModuleName = "escrow"
	StoreKey   = ModuleName
)

// Collection prefixes. Never renumber.
var (
	ParamsKey             = collections.NewPrefix(0)
	AccountsKey           = collections.NewPrefix(1)
	PaymentsKey           = collections.NewPrefix(2)
	PaymentsByProviderKey = collections.NewPrefix(3)
	DepletionQueueKey     = collections.NewPrefix(4)
	ParkedKey             = collections.NewPrefix(5)
	AutoTopUpsKey         = collections.NewPrefix(6)
	TopUpQueueKey         = collections.NewPrefix(7)
)

// Why an automatic refill ended (EventAutoTopUpEnded).
const (
	TopUpLimitReached  = "limit_reached"
	TopUpCancelled     = "cancelled"
	TopUpAccountClosed = "account_closed"
)

// MaxDseq is the largest dseq the stores accept. Account and payment keys
// (and x/market's order, bid and lease keys) lead with the big-endian dseq,
// whose top byte is 0 below 2^56; a key from before issue 21 leads with an
// address length instead, never 0, which is how the dseq-first migration
// tells the two layouts apart. A dseq is height × 10,000 + n, so no chain
// reaches it (7.2 × 10^12 blocks); genesis refuses one above it.
const MaxDseq = 1<<56 - 1

// Close reasons escrow itself reports.
const ReasonInsufficientFunds = "insufficient_funds"

// Key names the payment within its account ("gseq/oseq/provider"), in
// errors and logs; the store key is the typed PaymentKey.
func (id PaymentID) Key() string { return fmt.Sprintf("%d/%d/%s", id.Gseq, id.Oseq, id.Provider) }

// Name is "owner/dseq", for errors and logs.
func (id AccountID) Name() string { return fmt.Sprintf("%s/%d", id.Owner, id.Dseq) }

// Name is "owner/dseq/gseq/oseq/provider", for errors and logs.
func (id PaymentID) Name() string { return id.Account.Name() + "/" + id.Key() }
