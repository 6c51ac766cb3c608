// Package chain is gpunet-provider's (and the tenant CLI's) view of the
// chain: gRPC queries, a serial broadcaster that owns the account sequence,
// and a block watcher that follows the chain over the CometBFT websocket and
// never skips a block.
package chain

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	authv1beta1 "cosmossdk.io/api/cosmos/auth/v1beta1"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/cosmos/cosmos-sdk/codec"
	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	cryptocodec "github.com/cosmos/cosmos-sdk/crypto/codec"
	"github.com/cosmos/cosmos-sdk/crypto/keyring"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"
	sdk "github.com/cosmos/cosmos-sdk/types"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gpunet/gpunet/app/params"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// keyCodec decodes keyring records and account keys: the crypto key types
// are all it registers. The daemon builds and signs its transactions
// itself (tx.go), so it links neither the SDK's client and auth packages
// nor the app's codecs.
var keyCodec = sync.OnceValues(func() (codec.Codec, codectypes.InterfaceRegistry) {
	ir := codectypes.NewInterfaceRegistry()
	cryptocodec.RegisterInterfaces(ir)
	return codec.NewProtoCodec(ir), ir
})

// Options say how to reach the chain and whose key signs.
type Options struct {
	ChainID string
	RPC     string // http://host:26657
	GRPC    string // host:9090
	// GRPCTLS reaches GRPC over TLS: its certificate is checked against
	// GRPCCAFile (PEM; default the system's roots) for GRPCServerName
	// (default GRPC's host).
	GRPCTLS        bool
	GRPCCAFile     string
	GRPCServerName string
	KeyName        string
	KeyringBackend string
	KeyringDir     string // default ~/.gpunetd
	// Passphrase unlocks a file keyring without a terminal ("": read from
	// standard input when the keyring asks).
	Passphrase string
}

// Client talks to one node.
type Client struct {
	ChainID string
	RPC     *rpchttp.HTTP
	Conn    *grpc.ClientConn
	Key     Signer // the account key, unlocked (nil without one)
	KeyName string
	Address sdk.AccAddress
	// PubKey is the key's public half, which the provider's transactions
	// carry.
	PubKey cryptotypes.PubKey

	Market   markettypes.QueryClient
	Provider providertypes.QueryClient
	Auth     authv1beta1.QueryClient
	Tx       txtypes.ServiceClient

	blocks nodeBlocks // what the watcher reads blocks with
}

// transportCredentials are plain text, or TLS as opts say.
func transportCredentials(opts Options) (credentials.TransportCredentials, error) {
	if !opts.GRPCTLS {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: opts.GRPCServerName}
	if opts.GRPCCAFile != "" {
		pem, err := os.ReadFile(opts.GRPCCAFile)
		if err != nil {
			return nil, fmt.Errorf("chain grpc CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("chain grpc CA %s holds no PEM certificate", opts.GRPCCAFile)
		}
		cfg.RootCAs = pool
	}
	return credentials.NewTLS(cfg), nil
}

// Dial connects to the node and opens the keyring. It does not wait for
// the node: the watcher and broadcaster retry while it is down.
func Dial(opts Options) (*Client, error) {
	cdc, _ := keyCodec()
	rpc, err := rpchttp.New(opts.RPC, "/websocket")
	if err != nil {
		return nil, fmt.Errorf("chain rpc %s: %w", opts.RPC, err)
	}
	blocks, err := newNodeBlocks(rpc, opts.RPC)
	if err != nil {
		return nil, err
	}
	creds, err := transportCredentials(opts)
	if err != nil {
		return nil, err
	}
	// gRPC's own reconnect backoff grows to two minutes; capped here, a
	// node back from a restart is reached within the daemon's own retry.
	conn, err := grpc.NewClient(opts.GRPC, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: maxBackoff},
			MinConnectTimeout: 5 * time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("chain grpc %s: %w", opts.GRPC, err)
	}
	dialed := false
	defer func() {
		if !dialed {
			_ = conn.Close() // the keyring refused: nothing was sent on it
		}
	}()
	c := &Client{
		ChainID: opts.ChainID, RPC: rpc, Conn: conn, KeyName: opts.KeyName,
		Market:   markettypes.NewQueryClient(conn),
		Provider: providertypes.NewQueryClient(conn),
		Auth:     authv1beta1.NewQueryClient(conn),
		Tx:       txtypes.NewServiceClient(conn),
		blocks:   blocks,
	}
	if opts.KeyName != "" {
		dir := opts.KeyringDir
		if dir == "" {
			dir = params.DefaultHome()
		}
		var input io.Reader = os.Stdin
		if opts.Passphrase != "" {
			// The file keyring may ask more than once while opening.
			input = strings.NewReader(strings.Repeat(opts.Passphrase+"\n", 8))
		}
		kr, err := keyring.New(sdk.KeyringServiceName(), opts.KeyringBackend, dir, input, cdc)
		if err != nil {
			return nil, fmt.Errorf("open keyring (%s in %s): %w", opts.KeyringBackend, dir, err)
		}
		rec, err := kr.Key(opts.KeyName)
		if err != nil {
			return nil, fmt.Errorf("key %q not in the %s keyring at %s: %w", opts.KeyName, opts.KeyringBackend, dir, err)
		}
		addr, err := rec.GetAddress()
		if err != nil {
			return nil, err
		}
		pub, err := rec.GetPubKey()
		if err != nil {
			return nil, err
		}
		key, err := unlocked(rec, pub)
		if err != nil {
			return nil, err
		}
		c.Key, c.Address, c.PubKey = key, addr, pub
	}
	dialed = true
	return c, nil
}

// Close releases the connections.
func (c *Client) Close() error { return c.Conn.Close() }

// LatestHeight asks the node for its latest block height.
func (c *Client) LatestHeight(ctx context.Context) (int64, error) {
	st, err := c.RPC.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

// Account returns the account number and committed sequence of addr.
func (c *Client) Account(ctx context.Context, addr sdk.AccAddress) (uint64, uint64, error) {
	acc, err := c.accountInfo(ctx, addr.String())
	if err != nil {
		return 0, 0, err
	}
	return acc.AccountNumber, acc.Sequence, nil
}

// AccountPubKey returns the public key on chain for addr (nil if the
// account never signed).
func (c *Client) AccountPubKey(ctx context.Context, addr string) ([]byte, error) {
	acc, err := c.accountInfo(ctx, addr)
	if err != nil || acc.PubKey == nil {
		return nil, err
	}
	var pk cryptotypes.PubKey
	if err := keyRegistry().UnpackAny(&codectypes.Any{TypeUrl: acc.PubKey.TypeUrl, Value: acc.PubKey.Value}, &pk); err != nil {
		return nil, fmt.Errorf("account %s: public key: %w", addr, err)
	}
	return pk.Bytes(), nil
}

// accountInfo asks for the fields every kind of account has (base, vesting
// or module): number, sequence and public key.
func (c *Client) accountInfo(ctx context.Context, addr string) (*authv1beta1.BaseAccount, error) {
	res, err := c.Auth.AccountInfo(ctx, &authv1beta1.QueryAccountInfoRequest{Address: addr})
	if err != nil {
		return nil, err
	}
	if res.Info == nil {
		return nil, fmt.Errorf("account %s: the node sent no account info", addr)
	}
	return res.Info, nil
}

func keyRegistry() codectypes.InterfaceRegistry {
	_, ir := keyCodec()
	return ir
}
