package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gpunet/gpunet/internal/coin"
)

// MaxBatch is the most messages one transaction carries.
const MaxBatch = 20

// Result is what became of a broadcast request.
type Result struct {
	TxHash string
	Err    error
	// txBytes and seq are the signed transaction and its sequence, kept so
	// a transaction a restarting node dropped can be offered again.
	txBytes []byte
	seq     uint64
}

type request struct {
	msgs   []sdk.Msg
	gasMul float64 // extra factor on the simulated gas (retry after out-of-gas)
	// alone keeps the request out of batches: CheckTx does not run message
	// handlers, so a batched message failing in the block (a bid on an
	// order just matched) would take a lease start or close down with it.
	alone bool
	done  chan Result
}

// Broadcaster owns the provider account's sequence: every transaction goes
// through its one goroutine, which batches queued messages, simulates gas,
// signs and broadcasts, and resyncs the sequence when the node reports a
// mismatch (by ABCI error code).
type Broadcaster struct {
	c        *Client
	gasPrice sdkmath.LegacyDec
	gasAdj   float64
	log      *slog.Logger
	queue    chan request
	// MaxFee, when positive, is the most ugpn one transaction may pay: a
	// node (or a chain) that asks for more gas is refused, not paid.
	MaxFee sdkmath.Int

	accNum, seq uint64
	synced      bool

	// resendEvery is how long a transaction may stay uncommitted before
	// its bytes are offered to the node again (see waitCommitted).
	resendEvery time.Duration
	// sendRaw hands signed bytes to the node's mempool (CometBFT's
	// broadcast_tx_sync) and returns CheckTx's code.
	sendRaw func(ctx context.Context, tx []byte) (code uint32, codespace string, err error)
}

// NewBroadcaster returns a broadcaster for the client's key; Run starts it.
func NewBroadcaster(c *Client, gasPrice sdkmath.LegacyDec, gasAdj float64, logger *slog.Logger) *Broadcaster {
	b := &Broadcaster{c: c, gasPrice: gasPrice, gasAdj: gasAdj, log: logger, queue: make(chan request, 1024), resendEvery: 3 * time.Second}
	b.sendRaw = func(ctx context.Context, tx []byte) (uint32, string, error) {
		res, err := c.RPC.BroadcastTxSync(ctx, tx)
		if err != nil {
			return 0, "", err
		}
		return res.Code, res.Codespace, nil
	}
	return b
}

// Submit queues msgs for one transaction (possibly batched with others) and
// returns a channel that receives the outcome of CheckTx.
func (b *Broadcaster) Submit(msgs ...sdk.Msg) <-chan Result {
	return b.submit(1, false, msgs)
}

func (b *Broadcaster) submit(gasMul float64, alone bool, msgs []sdk.Msg) <-chan Result {
	done := make(chan Result, 1)
	b.queue <- request{msgs: msgs, gasMul: gasMul, alone: alone, done: done}
	return done
}

// Send submits and waits for the transaction to be accepted into the mempool.
func (b *Broadcaster) Send(ctx context.Context, msgs ...sdk.Msg) (string, error) {
	select {
	case r := <-b.Submit(msgs...):
		return r.TxHash, r.Err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// SendAndWait sends msgs in a transaction of their own and waits for it to
// be committed, returning an error when it failed in the block.
// A transaction that ran out of gas (the state moved between simulation
// and execution) is sent again once with more gas, and one a restarting
// node lost whose sequence another transaction then took is signed and
// sent again (twice at most).
func (b *Broadcaster) SendAndWait(ctx context.Context, timeout time.Duration, msgs ...sdk.Msg) (*sdk.TxResponse, error) {
	gasMul, superseded := 1.0, 0
	for {
		var r Result
		select {
		case r = <-b.submit(gasMul, true, msgs):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if r.Err != nil {
			return nil, r.Err
		}
		b.log.Info("transaction sent; waiting for its block", "tx", r.TxHash, "type", sdk.MsgTypeURL(msgs[0]))
		wctx, cancel := context.WithTimeout(ctx, timeout)
		res, err := b.waitCommitted(wctx, r)
		cancel()
		if errors.Is(err, errSuperseded) && superseded < 2 {
			superseded++
			b.log.Info("transaction lost by the node and its sequence reused; signing it again", "tx", r.TxHash, "sequence", r.seq)
			continue
		}
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("tx %s not committed within %s", r.TxHash, timeout)
			}
			return nil, err
		}
		if res.Code == 0 {
			return res, nil
		}
		if gasMul == 1 && res.Code == sdkerrors.ErrOutOfGas.ABCICode() && res.Codespace == sdkerrors.ErrOutOfGas.Codespace() {
			b.log.Info("out of gas in the block; sending again with more gas", "tx", r.TxHash, "gas_used", res.GasUsed, "gas_wanted", res.GasWanted)
			gasMul = 2
			continue
		}
		return res, fmt.Errorf("tx %s failed in block %d: code %d (%s): %s", r.TxHash, res.Height, res.Code, res.Codespace, res.RawLog)
	}
}

// errSuperseded marks a transaction that will never be committed: the node
// dropped it (a restart empties the mempool) and the account's sequence
// moved past it with another transaction.
var errSuperseded = errors.New("transaction dropped and its sequence taken by another")

// waitCommitted polls for the transaction until ctx ends. A node that
// restarts forgets its mempool, so while the transaction is not in a block
// its signed bytes are offered again every resendEvery: the node answers
// that it already holds them, takes them back if it lost them, or refuses
// their sequence. A refused sequence below the committed one, with the
// transaction still not found, means it was superseded.
func (b *Broadcaster) waitCommitted(ctx context.Context, r Result) (*sdk.TxResponse, error) {
	poll := time.NewTicker(300 * time.Millisecond)
	defer poll.Stop()
	lastSent, stale := time.Now(), 0
	for {
		res, err := b.c.Tx.GetTx(ctx, &txtypes.GetTxRequest{Hash: r.TxHash})
		if err == nil && res.TxResponse != nil {
			return res.TxResponse, nil
		}
		if len(r.txBytes) > 0 && time.Since(lastSent) >= b.resendEvery {
			lastSent = time.Now()
			switch b.resend(ctx, r) {
			case resendTaken:
				b.log.Info("transaction was no longer in the node's mempool; sent it again", "tx", r.TxHash)
				stale = 0
			case resendStale:
				// Seen twice, a resend apart, so a commit that was still
				// being indexed the first time has been found since.
				if stale++; stale >= 2 {
					return nil, errSuperseded
				}
			default:
				stale = 0
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-poll.C:
		}
	}
}

type resendOutcome int

const (
	resendUnknown resendOutcome = iota // node unreachable, or held by the node already
	resendTaken                        // the node had lost it and took it again
	resendStale                        // its sequence is below the committed one
)

// resend offers the signed bytes to CometBFT's RPC rather than the SDK's
// gRPC service, which a node restarted while the chain is halted does not
// serve until the next block (it has no height to query at).
func (b *Broadcaster) resend(ctx context.Context, r Result) resendOutcome {
	code, codespace, err := b.sendRaw(ctx, r.txBytes)
	if err != nil {
		return resendUnknown // unreachable, or "tx already exists in cache"
	}
	switch {
	case code == 0:
		return resendTaken
	case code == sdkerrors.ErrWrongSequence.ABCICode() && codespace == sdkerrors.ErrWrongSequence.Codespace():
		_, committed, err := b.c.Account(ctx, b.c.Address)
		if err == nil && committed > r.seq {
			return resendStale
		}
	}
	return resendUnknown
}

// Run processes the queue until ctx ends, one transaction at a time.
func (b *Broadcaster) Run(ctx context.Context) {
	var next *request // taken from the queue but kept for the next round
	for {
		var first request
		if next != nil {
			first, next = *next, nil
		} else {
			select {
			case <-ctx.Done():
				return
			case first = <-b.queue:
			}
		}
		var batch []request
		batch, next = takeBatch(first, b.queue)
		b.process(ctx, batch)
	}
}

// takeBatch adds to first what is already queued, up to MaxBatch messages.
// A request marked alone gets a transaction of its own: it ends the batch
// and is returned as next, to be sent in the following round, so queue
// order is kept.
func takeBatch(first request, queue <-chan request) (batch []request, next *request) {
	batch = []request{first}
	n := len(first.msgs)
	for !first.alone && n < MaxBatch {
		select {
		case r := <-queue:
			if r.alone {
				return batch, &r
			}
			batch = append(batch, r)
			n += len(r.msgs)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// process sends a batch as one transaction; if the batch as a whole is
// refused, each request is sent alone so one bad message cannot sink the rest.
func (b *Broadcaster) process(ctx context.Context, batch []request) {
	var msgs []sdk.Msg
	gasMul := 1.0
	for _, r := range batch {
		msgs = append(msgs, r.msgs...)
		gasMul = max(gasMul, r.gasMul)
	}
	res := b.broadcast(ctx, msgs, gasMul)
	if res.Err == nil || len(batch) == 1 {
		for _, r := range batch {
			r.done <- res
		}
		return
	}
	b.log.Info("batch refused, sending its requests one by one", "requests", len(batch), "err", res.Err)
	for _, r := range batch {
		r.done <- b.broadcast(ctx, r.msgs, max(1, r.gasMul))
	}
}

// errSequence marks a refusal for a wrong sequence.
var errSequence = errors.New("account sequence mismatch")

// errNoReply is a broadcast the node answered without a result: the
// transaction may be in its mempool or not, so the sequence is read again
// before the next one.
var errNoReply = errors.New("broadcast: the node's reply is empty; the transaction may have been accepted")

// broadcast simulates, signs and broadcasts msgs, retrying while the node
// is unreachable, waiting out a node that is re-checking its mempool, and
// resyncing the sequence (up to three times) on a mismatch.
func (b *Broadcaster) broadcast(ctx context.Context, msgs []sdk.Msg, gasMul float64) Result {
	backoff := 500 * time.Millisecond
	lagRetries, resyncs, simChecked := 0, 0, false
	for {
		if !b.synced {
			if err := b.resync(ctx); err != nil {
				b.log.Warn("cannot read provider account; retrying", "err", err, "in", backoff)
				if !sleep(ctx, backoff) {
					return Result{Err: ctx.Err()}
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
		}
		res, err := b.try(ctx, msgs, gasMul)
		if err == nil {
			b.seq++
			return res
		}
		if unavailable(err) {
			b.log.Warn("node unreachable; retrying", "err", err, "in", backoff)
			if !sleep(ctx, backoff) {
				return Result{Err: ctx.Err()}
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		if errors.Is(err, errNoReply) {
			b.synced = false
			return Result{Err: err}
		}
		if errors.Is(err, errSequence) && resyncs < 3 {
			resyncs++
			b.log.Info("sequence mismatch; resyncing", "local_sequence", b.seq)
			b.synced = false
			continue
		}
		var simErr *simulationError
		if errors.As(err, &simErr) && strings.Contains(err.Error(), errSequence.Error()) && lagRetries < 3 {
			lagRetries++
			// The node expects a later sequence than ours: transactions
			// of this key that we did not count (another process signing
			// with it, such as a daemon stopped with one in flight) are in
			// its mempool. Ours must follow them.
			if want, ok := expectedSequence(err); ok && want > b.seq {
				b.log.Info("the node expects a later sequence; using it", "local_sequence", b.seq, "node_sequence", want)
				b.seq = want
				continue
			}
			// Right after a block the node's check state is the committed
			// one until it has re-checked its mempool, which holds our
			// earlier transactions: simulation sees an older sequence for
			// a moment. Wait it out before doubting our own count.
			if !sleep(ctx, 400*time.Millisecond) {
				return Result{Err: ctx.Err()}
			}
			continue
		}
		if errors.As(err, &simErr) && !simChecked {
			simChecked = true
			// Simulation gives no ABCI code: compare our sequence with the
			// committed one and retry once if they differ.
			_, committed, qerr := b.c.Account(ctx, b.c.Address)
			if qerr == nil && committed != b.seq {
				b.log.Info("simulation failed with a sequence other than the committed one; retrying with it",
					"local_sequence", b.seq, "committed_sequence", committed)
				prev := b.seq
				b.seq = committed
				if res, err2 := b.try(ctx, msgs, gasMul); err2 == nil {
					b.seq++
					return res
				}
				b.seq = prev
			}
		}
		return Result{Err: err}
	}
}

// expectedSequence reads the sequence a node said it expects from its
// refusal ("account sequence mismatch, expected N, got M", the SDK's
// signature check).
func expectedSequence(err error) (uint64, bool) {
	_, rest, ok := strings.Cut(err.Error(), errSequence.Error()+", expected ")
	if !ok {
		return 0, false
	}
	n, _, _ := strings.Cut(rest, ",")
	seq, perr := strconv.ParseUint(n, 10, 64)
	return seq, perr == nil
}

// maxBackoff caps the wait between tries while the node is unreachable:
// a node back from a restart is used again within it.
const maxBackoff = 2 * time.Second

// unavailable reports a transport failure (node down), as opposed to a refusal.
func unavailable(err error) bool {
	var s interface{ GRPCStatus() *status.Status }
	if errors.As(err, &s) {
		return s.GRPCStatus().Code() == codes.Unavailable
	}
	return false
}

// feeFieldsGas is the gas a signed transaction uses beyond its simulation
// with a one-unit fee and no gas limit: a few more bytes of fee amount and
// gas limit (10 gas a byte) and balances a digit longer.
const feeFieldsGas = 500

// maxTxGas bounds the gas a simulation may ask for, far above any block's
// limit: a node's figure past it is refused before it becomes a fee.
const maxTxGas = 1 << 40

type simulationError struct{ err error }

func (e *simulationError) Error() string { return "simulate: " + e.err.Error() }
func (e *simulationError) Unwrap() error { return e.err }

// params are the transaction fields of the broadcaster's account as it
// stands; signed with key, or for simulation with none.
func (b *Broadcaster) params(gas uint64, fee sdk.Coins, key Signer) txParams {
	return txParams{chainID: b.c.ChainID, accNum: b.accNum, seq: b.seq, gas: gas, fee: fee, pub: b.c.PubKey, keyName: b.c.KeyName, key: key}
}

func (b *Broadcaster) try(ctx context.Context, msgs []sdk.Msg, gasMul float64) (Result, error) {
	if b.c.Key == nil || b.c.PubKey == nil {
		return Result{}, fmt.Errorf("sign: the client has no key (key %q)", b.c.KeyName)
	}
	// The simulation pays a fee as the transaction will: the chain deducts
	// a fee only when there is one, and that transfer is about 16k gas
	// the transaction uses (a simulation without it came out short by as
	// much, and a bid sent with gas_adjustment 1.3 ran out of gas). One
	// unit stands for the fee, whose amount follows from the gas.
	var simFee sdk.Coins
	if b.gasPrice.IsPositive() {
		simFee = sdk.NewCoins(sdk.NewInt64Coin(coin.Denom, 1))
	}
	simBz, err := buildTx(msgs, b.params(0, simFee, nil))
	if err != nil {
		return Result{}, fmt.Errorf("build simulation tx: %w", err)
	}
	sim, err := b.c.Tx.Simulate(ctx, &txtypes.SimulateRequest{TxBytes: simBz})
	if err != nil {
		return Result{}, &simulationError{err}
	}
	if sim.GetGasInfo() == nil || sim.GetGasInfo().GasUsed == 0 {
		// No transaction uses no gas: a reply without a figure would
		// make a limit the transaction runs out of, paid for twice.
		return Result{}, &simulationError{errors.New("the node's reply has no gas figure")}
	}
	used := sim.GetGasInfo().GasUsed
	want := (float64(used) + feeFieldsGas) * b.gasAdj * gasMul
	if want > maxTxGas {
		return Result{}, &simulationError{fmt.Errorf("the node reports %d gas used, which with gas_adjustment %g is %.0f, more than any transaction may ask for (%d)",
			used, b.gasAdj*gasMul, want, uint64(maxTxGas))}
	}
	gas := uint64(math.Ceil(want))
	fee := b.gasPrice.MulInt64(int64(gas)).Ceil().TruncateInt()
	if err := CheckFee(fee, b.MaxFee); err != nil {
		return Result{}, err
	}
	var fees sdk.Coins
	if fee.IsPositive() {
		fees = sdk.NewCoins(sdk.NewCoin(coin.Denom, fee))
	}
	bz, err := buildTx(msgs, b.params(gas, fees, b.c.Key))
	if err != nil {
		return Result{}, err
	}
	res, err := b.c.Tx.BroadcastTx(ctx, &txtypes.BroadcastTxRequest{TxBytes: bz, Mode: txtypes.BroadcastMode_BROADCAST_MODE_SYNC})
	if err != nil {
		return Result{}, fmt.Errorf("broadcast: %w", err)
	}
	r := res.GetTxResponse()
	if r == nil {
		return Result{}, errNoReply
	}
	if r.Code == sdkerrors.ErrWrongSequence.ABCICode() && r.Codespace == sdkerrors.ErrWrongSequence.Codespace() {
		return Result{}, errSequence
	}
	if r.Code != 0 {
		return Result{}, fmt.Errorf("refused by the node: code %d (%s): %s", r.Code, r.Codespace, r.RawLog)
	}
	return Result{TxHash: r.TxHash, txBytes: bz, seq: b.seq}, nil
}

func (b *Broadcaster) resync(ctx context.Context) error {
	accNum, seq, err := b.c.Account(ctx, b.c.Address)
	if err != nil {
		return err
	}
	b.accNum, b.seq, b.synced = accNum, seq, true
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ErrFeeTooHigh is returned for a transaction that would pay more than the
// configured maximum fee.
var ErrFeeTooHigh = errors.New("transaction fee above chain.max_fee")

// CheckFee refuses a fee above max (a positive max; zero or nil: no cap).
func CheckFee(fee, max sdkmath.Int) error {
	if !max.IsNil() && max.IsPositive() && fee.GT(max) {
		return fmt.Errorf("%w: it needs %s%s, the cap is %s%s", ErrFeeTooHigh, fee, coin.Denom, max, coin.Denom)
	}
	return nil
}
