package chain

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	authv1beta1 "cosmossdk.io/api/cosmos/auth/v1beta1"
	sdkmath "cosmossdk.io/math"
	sdk "github.com/cosmos/cosmos-sdk/types"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func reqs(alone bool, sizes ...int) []request {
	var out []request
	for _, n := range sizes {
		msgs := make([]sdk.Msg, n)
		for i := range msgs {
			msgs[i] = &banktypes.MsgSend{}
		}
		out = append(out, request{msgs: msgs, alone: alone})
	}
	return out
}

func queueOf(rs ...request) chan request {
	q := make(chan request, len(rs))
	for _, r := range rs {
		q <- r
	}
	return q
}

// Queued messages share a transaction up to MaxBatch; a lease start or close
// (alone) never shares one, so a bid failing in the block cannot sink it,
// and it keeps its place in the queue.
func TestTakeBatch(t *testing.T) {
	t.Run("batches what is queued", func(t *testing.T) {
		rs := reqs(false, 1, 2, 3)
		batch, next := takeBatch(rs[0], queueOf(rs[1:]...))
		if len(batch) != 3 || next != nil {
			t.Fatalf("batch %d requests, next %v; want 3, nil", len(batch), next)
		}
	})
	t.Run("stops at MaxBatch messages", func(t *testing.T) {
		rs := reqs(false, MaxBatch-1, 1, 1)
		q := queueOf(rs[1:]...)
		batch, next := takeBatch(rs[0], q)
		if len(batch) != 2 || next != nil || len(q) != 1 {
			t.Fatalf("batch %d, next %v, left %d; want 2, nil, 1", len(batch), next, len(q))
		}
	})
	t.Run("an alone request ends the batch and comes next", func(t *testing.T) {
		bids, start := reqs(false, 1, 1), reqs(true, 1)[0]
		q := queueOf(bids[1], start, reqs(false, 1)[0])
		batch, next := takeBatch(bids[0], q)
		if len(batch) != 2 || next == nil || !next.alone || len(q) != 1 {
			t.Fatalf("batch %d, next %v, left %d; want 2 bids, the start next, 1 left", len(batch), next, len(q))
		}
		batch, next = takeBatch(*next, q)
		if len(batch) != 1 || !batch[0].alone || next != nil || len(q) != 1 {
			t.Fatalf("the start was batched: %d requests", len(batch))
		}
	})
}

// fakeNode answers GetTx and broadcast_tx_sync like a node whose mempool a
// restart emptied: the transaction is not found until it is broadcast again
// (lost), or never, its sequence taken by another (superseded).
type fakeNode struct {
	txtypes.ServiceClient
	authv1beta1.QueryClient
	superseded bool
	committed  uint64 // the account's committed sequence
	resent     int
}

func (n *fakeNode) GetTx(context.Context, *txtypes.GetTxRequest, ...grpc.CallOption) (*txtypes.GetTxResponse, error) {
	if n.resent > 0 && !n.superseded {
		return &txtypes.GetTxResponse{TxResponse: &sdk.TxResponse{Height: 9}}, nil
	}
	return nil, status.Error(codes.NotFound, "tx not found")
}

func (n *fakeNode) broadcastTxSync(context.Context, []byte) (uint32, string, error) {
	n.resent++
	if n.superseded {
		return sdkerrors.ErrWrongSequence.ABCICode(), sdkerrors.ErrWrongSequence.Codespace(), nil
	}
	return 0, "", nil
}

func (n *fakeNode) AccountInfo(context.Context, *authv1beta1.QueryAccountInfoRequest, ...grpc.CallOption) (*authv1beta1.QueryAccountInfoResponse, error) {
	return &authv1beta1.QueryAccountInfoResponse{Info: &authv1beta1.BaseAccount{AccountNumber: 3, Sequence: n.committed}}, nil
}

// A transaction a restarting node forgot is offered again and found
// committed; one whose sequence another transaction took is given up as
// superseded (and signed again by SendAndWait), not waited for until the
// timeout.
func TestWaitCommittedResendsWhatTheNodeLost(t *testing.T) {
	newB := func(n *fakeNode) *Broadcaster {
		c := &Client{Tx: n, Auth: n, Address: sdk.AccAddress("provider____________")}
		b := NewBroadcaster(c, sdkmath.LegacyNewDec(1), 1.2, slog.New(slog.DiscardHandler))
		b.resendEvery, b.sendRaw = 10*time.Millisecond, n.broadcastTxSync
		return b
	}
	r := Result{TxHash: "ABCD", txBytes: []byte{1}, seq: 7}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	lost := &fakeNode{committed: 7}
	res, err := newB(lost).waitCommitted(ctx, r)
	if err != nil || res.Height != 9 || lost.resent != 1 {
		t.Fatalf("lost tx: %v, %+v after %d resends; want found in block 9 after 1", err, res, lost.resent)
	}

	taken := &fakeNode{superseded: true, committed: 8}
	if _, err := newB(taken).waitCommitted(ctx, r); !errors.Is(err, errSuperseded) || taken.resent != 2 {
		t.Fatalf("superseded tx: %v after %d resends; want errSuperseded after 2", err, taken.resent)
	}

	// A wrong sequence at or above the committed one is a gap (an earlier
	// transaction is missing too), not a loss: keep waiting.
	gap := &fakeNode{superseded: true, committed: 7}
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelShort()
	if _, err := newB(gap).waitCommitted(short, r); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sequence gap: %v, want to wait until the deadline", err)
	}
}

// simNode fails simulation with a stale sequence while the node re-checks
// its mempool (lag calls), is unreachable for its first broadcasts
// (down), then refuses one broadcast for its sequence (wrongSeq), then
// takes it.
type simNode struct {
	fakeNode
	lag, down int
	wrongSeq  bool
	sims      int
}

func (n *simNode) Simulate(context.Context, *txtypes.SimulateRequest, ...grpc.CallOption) (*txtypes.SimulateResponse, error) {
	n.sims++
	if n.lag > 0 {
		n.lag--
		return nil, status.Error(codes.Unknown, "account sequence mismatch, expected 5, got 7: incorrect account sequence")
	}
	return &txtypes.SimulateResponse{GasInfo: &sdk.GasInfo{GasUsed: 50_000}}, nil
}

func (n *simNode) BroadcastTx(context.Context, *txtypes.BroadcastTxRequest, ...grpc.CallOption) (*txtypes.BroadcastTxResponse, error) {
	if n.down > 0 {
		n.down--
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	if n.wrongSeq {
		n.wrongSeq = false
		return &txtypes.BroadcastTxResponse{TxResponse: &sdk.TxResponse{Code: sdkerrors.ErrWrongSequence.ABCICode(), Codespace: sdkerrors.ErrWrongSequence.Codespace()}}, nil
	}
	return &txtypes.BroadcastTxResponse{TxResponse: &sdk.TxResponse{TxHash: "DONE"}}, nil
}

// A simulation that sees an older sequence while the node re-checks its
// mempool is waited out, and a sequence refused after an outage is still
// resynced: outage retries do not use up the resyncs.
func TestBroadcastWaitsOutRecheckAndResyncsAfterAnOutage(t *testing.T) {
	kr, addr, pub := newKey(t)
	send := func(n *simNode) Result {
		c := &Client{ChainID: "gpunet-1", Tx: n, Auth: n, Key: kr, KeyName: "provider", Address: addr, PubKey: pub}
		b := NewBroadcaster(c, sdkmath.LegacyNewDec(1), 1.2, slog.New(slog.DiscardHandler))
		return b.broadcast(context.Background(), []sdk.Msg{&banktypes.MsgSend{FromAddress: addr.String(), ToAddress: addr.String()}}, 1)
	}
	lagging := &simNode{fakeNode: fakeNode{committed: 7}, lag: 2}
	if r := send(lagging); r.Err != nil || r.TxHash != "DONE" || lagging.sims != 3 {
		t.Fatalf("during recheck: %+v after %d simulations; want sent after 3", r, lagging.sims)
	}
	afterOutage := &simNode{fakeNode: fakeNode{committed: 7}, down: 3, wrongSeq: true}
	if r := send(afterOutage); r.Err != nil || r.TxHash != "DONE" {
		t.Fatalf("sequence refused after an outage: %+v; want resynced and sent", r)
	}
}

// gasNode answers simulations with reply and records what it is sent.
type gasNode struct {
	fakeNode
	reply      *txtypes.SimulateResponse
	noTxResult bool
	simulated  []byte
	broadcast  []byte
}

func (n *gasNode) Simulate(_ context.Context, req *txtypes.SimulateRequest, _ ...grpc.CallOption) (*txtypes.SimulateResponse, error) {
	n.simulated = req.TxBytes
	return n.reply, nil
}

func (n *gasNode) BroadcastTx(_ context.Context, req *txtypes.BroadcastTxRequest, _ ...grpc.CallOption) (*txtypes.BroadcastTxResponse, error) {
	n.broadcast = req.TxBytes
	if n.noTxResult {
		return &txtypes.BroadcastTxResponse{}, nil
	}
	return &txtypes.BroadcastTxResponse{TxResponse: &sdk.TxResponse{TxHash: "DONE"}}, nil
}

func authInfoOf(t *testing.T, bz []byte) txtypes.AuthInfo {
	t.Helper()
	var raw txtypes.TxRaw
	if err := raw.Unmarshal(bz); err != nil {
		t.Fatal(err)
	}
	var ai txtypes.AuthInfo
	if err := ai.Unmarshal(raw.AuthInfoBytes); err != nil {
		t.Fatal(err)
	}
	return ai
}

// The simulation carries a one-unit fee when the transaction will pay one
// (the chain's fee deduction is gas the transaction uses), none when gas is
// free; the gas limit is the simulated figure plus the fee fields' margin,
// times gas_adjustment. A reply with no gas figure or an absurd one is
// refused before anything is signed or sent, and a broadcast the node
// answers without a result makes the broadcaster read its sequence again.
func TestBroadcastSizesGasFromASimulationThatPaysTheFee(t *testing.T) {
	kr, addr, pub := newKey(t)
	send := func(n *gasNode, price sdkmath.LegacyDec) (Result, *Broadcaster) {
		c := &Client{ChainID: "gpunet-1", Tx: n, Auth: n, Key: kr, KeyName: "provider", Address: addr, PubKey: pub}
		b := NewBroadcaster(c, price, 1.2, slog.New(slog.DiscardHandler))
		return b.broadcast(context.Background(), []sdk.Msg{&banktypes.MsgSend{FromAddress: addr.String(), ToAddress: addr.String()}}, 1), b
	}
	priced := &gasNode{reply: &txtypes.SimulateResponse{GasInfo: &sdk.GasInfo{GasUsed: 70_000}}}
	if r, _ := send(priced, sdkmath.LegacyMustNewDecFromStr("0.025")); r.Err != nil {
		t.Fatal(r.Err)
	}
	if fee := authInfoOf(t, priced.simulated).Fee; fee == nil || fee.Amount.String() != "1ugpn" {
		t.Fatalf("simulated with fee %v, want 1ugpn", fee)
	}
	fee := authInfoOf(t, priced.broadcast).Fee
	wantGas := uint64(84_600) // (70,000 + 500) × 1.2
	if fee.GasLimit != wantGas || fee.Amount.String() != "2115ugpn" {
		t.Fatalf("sent with gas %d and fee %s, want %d and 2115ugpn", fee.GasLimit, fee.Amount, wantGas)
	}

	free := &gasNode{reply: &txtypes.SimulateResponse{GasInfo: &sdk.GasInfo{GasUsed: 70_000}}}
	if r, _ := send(free, sdkmath.LegacyZeroDec()); r.Err != nil {
		t.Fatal(r.Err)
	}
	if fee := authInfoOf(t, free.simulated).Fee; fee != nil && !fee.Amount.IsZero() {
		t.Fatalf("simulated with fee %s at a zero gas price, want none", fee.Amount)
	}

	for name, c := range map[string]struct {
		reply *txtypes.SimulateResponse
		want  string
	}{
		"no gas info": {&txtypes.SimulateResponse{}, "no gas figure"},
		"no gas used": {&txtypes.SimulateResponse{GasInfo: &sdk.GasInfo{}}, "no gas figure"},
		"absurd gas":  {&txtypes.SimulateResponse{GasInfo: &sdk.GasInfo{GasUsed: 1 << 62}}, "more than any transaction may ask for"},
	} {
		n := &gasNode{reply: c.reply}
		r, _ := send(n, sdkmath.LegacyMustNewDecFromStr("0.025"))
		if r.Err == nil || !strings.Contains(r.Err.Error(), c.want) || n.broadcast != nil {
			t.Errorf("%s: %v (broadcast %t), want an error saying %q and nothing sent", name, r.Err, n.broadcast != nil, c.want)
		}
	}

	silent := &gasNode{reply: &txtypes.SimulateResponse{GasInfo: &sdk.GasInfo{GasUsed: 70_000}}, noTxResult: true}
	r, b := send(silent, sdkmath.LegacyMustNewDecFromStr("0.025"))
	if !errors.Is(r.Err, errNoReply) || b.synced {
		t.Fatalf("empty broadcast reply: %v, synced %t; want errNoReply and the sequence to be read again", r.Err, b.synced)
	}
}

// mempoolNode's check state expects sequence want: transactions of the
// same key signed elsewhere are in its mempool, past the committed one.
type mempoolNode struct {
	gasNode
	want uint64
	sims []uint64 // the sequence of each simulation
}

func (n *mempoolNode) Simulate(_ context.Context, req *txtypes.SimulateRequest, _ ...grpc.CallOption) (*txtypes.SimulateResponse, error) {
	var raw txtypes.TxRaw
	var ai txtypes.AuthInfo
	if err := raw.Unmarshal(req.TxBytes); err != nil {
		return nil, err
	}
	if err := ai.Unmarshal(raw.AuthInfoBytes); err != nil {
		return nil, err
	}
	seq := ai.SignerInfos[0].Sequence
	n.sims = append(n.sims, seq)
	if seq != n.want {
		return nil, status.Errorf(codes.Unknown, "account sequence mismatch, expected %d, got %d: incorrect account sequence", n.want, seq)
	}
	return &txtypes.SimulateResponse{GasInfo: &sdk.GasInfo{GasUsed: 70_000}}, nil
}

// A key another process signed with (a daemon stopped with a transaction
// in flight, and then `register`) has transactions in the node's mempool
// past its committed sequence: the broadcaster takes the sequence the
// node says it expects instead of failing on the committed one.
func TestBroadcastFollowsTheSequenceTheNodeExpects(t *testing.T) {
	kr, addr, pub := newKey(t)
	n := &mempoolNode{gasNode: gasNode{fakeNode: fakeNode{committed: 2}}, want: 4}
	c := &Client{ChainID: "gpunet-1", Tx: n, Auth: n, Key: kr, KeyName: "provider", Address: addr, PubKey: pub}
	b := NewBroadcaster(c, sdkmath.LegacyMustNewDecFromStr("0.025"), 1.2, slog.New(slog.DiscardHandler))
	r := b.broadcast(context.Background(), []sdk.Msg{&banktypes.MsgSend{FromAddress: addr.String(), ToAddress: addr.String()}}, 1)
	if r.Err != nil {
		t.Fatalf("broadcast: %v (simulated with sequences %v)", r.Err, n.sims)
	}
	if got := authInfoOf(t, n.broadcast).SignerInfos[0].Sequence; got != 4 || b.seq != 5 {
		t.Fatalf("sent with sequence %d, next %d (simulated with %v); want 4, then 5", got, b.seq, n.sims)
	}
	for _, tc := range []struct {
		msg  string
		want uint64
		ok   bool
	}{
		{"rpc error: code = Unknown desc = account sequence mismatch, expected 12, got 9: incorrect account sequence", 12, true},
		{"account sequence mismatch", 0, false},
		{"account sequence mismatch, expected x, got 1", 0, false},
	} {
		if got, ok := expectedSequence(errors.New(tc.msg)); got != tc.want || ok != tc.ok {
			t.Errorf("expectedSequence(%q) = %d, %t; want %d, %t", tc.msg, got, ok, tc.want, tc.ok)
		}
	}
}
