// Package tenant is the tenant's side of gpunet: deploying an SDL file
// (create the deployment, watch the auction, send the manifest to the
// winner, wait for the workload), following leases, and keeping the
// tenant's manifests locally so later commands need only the deployment id.
package tenant

import (
	"context"
	"fmt"
	"time"

	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/client/tx"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	"github.com/cosmos/cosmos-sdk/types/tx/signing"
	authtx "github.com/cosmos/cosmos-sdk/x/auth/tx"

	"github.com/gpunet/gpunet/provider/api"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Client acts for one tenant account through a gpunetd client context.
type Client struct {
	Ctx   client.Context
	Owner sdk.AccAddress
	// Fees is what transactions pay: the command's fee flags.
	Fees FeeSettings

	Market   markettypes.QueryClient
	Provider providertypes.QueryClient
	Escrow   escrowtypes.QueryClient
}

// NewClient wraps a client context whose From key is the tenant.
func NewClient(ctx client.Context) (*Client, error) {
	if ctx.Keyring == nil || ctx.GetFromAddress().Empty() {
		return nil, fmt.Errorf("no tenant key: pass --from <key name>")
	}
	return &Client{
		Ctx: ctx, Owner: ctx.GetFromAddress(),
		Market: markettypes.NewQueryClient(ctx), Provider: providertypes.NewQueryClient(ctx), Escrow: escrowtypes.NewQueryClient(ctx),
	}, nil
}

// Sign signs bytes with the tenant's key (for provider API requests).
func (c *Client) Sign(msg []byte) ([]byte, cryptotypes.PubKey, error) {
	return c.Ctx.Keyring.Sign(c.Ctx.GetFromName(), msg, signing.SignMode_SIGN_MODE_DIRECT)
}

// SendTx simulates, signs and broadcasts msgs, then waits for the block
// and fails when the transaction failed in it.
func (c *Client) SendTx(ctx context.Context, msgs ...sdk.Msg) (*sdk.TxResponse, error) {
	num, seq, err := c.Ctx.AccountRetriever.GetAccountNumberSequence(c.Ctx, c.Owner)
	if err != nil {
		return nil, fmt.Errorf("read account %s (is it funded?): %w", c.Owner, err)
	}
	var f tx.Factory
	var sim *txtypes.SimulateResponse
	for attempt := 0; ; attempt++ {
		f = tx.Factory{}.WithChainID(c.Ctx.ChainID).WithKeybase(c.Ctx.Keyring).WithTxConfig(c.Ctx.TxConfig).
			WithAccountNumber(num).WithSequence(seq).WithSignMode(signing.SignMode_SIGN_MODE_DIRECT).
			WithFeeGranter(c.Fees.Granter)
		simBz, err := f.BuildSimTx(msgs...)
		if err != nil {
			return nil, err
		}
		sim, err = txtypes.NewServiceClient(c.Ctx).Simulate(ctx, &txtypes.SimulateRequest{TxBytes: simBz})
		if err == nil {
			break
		}
		// An earlier transaction of this account may still be in the
		// mempool, so the committed sequence is behind: when the sequence
		// moves within a block or two, simulate again with it.
		if attempt >= 5 {
			return nil, fmt.Errorf("the chain refused the transaction: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(1200 * time.Millisecond):
		}
		_, next, qerr := c.Ctx.AccountRetriever.GetAccountNumberSequence(c.Ctx, c.Owner)
		if qerr != nil || next == seq {
			return nil, fmt.Errorf("the chain refused the transaction: %w", err)
		}
		seq = next
	}
	// The simulation runs even with a fixed --gas: it checks the
	// transaction before it costs fees, and finds the account's sequence.
	gas, fees, err := c.Fees.Choose(sim.GasInfo.GasUsed)
	if err != nil {
		return nil, err
	}
	f = f.WithGas(gas).WithFees(fees.String())
	txb, err := f.BuildUnsignedTx(msgs...)
	if err != nil {
		return nil, err
	}
	if err := tx.Sign(ctx, f, c.Ctx.GetFromName(), txb, true); err != nil {
		return nil, err
	}
	bz, err := c.Ctx.TxConfig.TxEncoder()(txb.GetTx())
	if err != nil {
		return nil, err
	}
	res, err := c.Ctx.WithBroadcastMode("sync").BroadcastTx(bz)
	if err != nil {
		return nil, err
	}
	if res.Code != 0 {
		return res, fmt.Errorf("refused: code %d (%s): %s", res.Code, res.Codespace, res.RawLog)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := authtx.QueryTx(c.Ctx, res.TxHash)
		if err == nil {
			if out.Code != 0 {
				return out, fmt.Errorf("tx %s failed in block %d: code %d (%s): %s", out.TxHash, out.Height, out.Code, out.Codespace, out.RawLog)
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("tx %s not committed within a minute", res.TxHash)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ProviderAPI returns a client for provider's API, pinned to its on-chain
// certificate; its status and manifest requests time out after
// api.RequestTimeout.
func (c *Client) ProviderAPI(ctx context.Context, provider string) (*api.Client, providertypes.ProviderView, error) {
	res, err := c.Provider.Provider(ctx, &providertypes.QueryProviderRequest{Owner: provider})
	if err != nil {
		return nil, providertypes.ProviderView{}, fmt.Errorf("provider %s: %w", provider, err)
	}
	p := res.Provider.Provider
	return api.NewClient(p.HostUri, c.Ctx.ChainID, p.Owner, p.TlsCertSha256, c.Owner.String(), c.Sign), res.Provider, nil
}
