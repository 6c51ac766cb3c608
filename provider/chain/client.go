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
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/cosmos/cosmos-sdk/client"
	"github.com/cosmos/cosmos-sdk/codec"
	codectypes "github.com/cosmos/cosmos-sdk/codec/types"
	"github.com/cosmos/cosmos-sdk/crypto/keyring"
	"github.com/cosmos/cosmos-sdk/std"
	sdk "github.com/cosmos/cosmos-sdk/types"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	authtx "github.com/cosmos/cosmos-sdk/x/auth/tx"
	authtypes "github.com/cosmos/cosmos-sdk/x/auth/types"
	banktypes "github.com/cosmos/cosmos-sdk/x/bank/types"
	"github.com/cosmos/gogoproto/proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gpunet/gpunet/app/params"
	escrowtypes "github.com/gpunet/gpunet/x/escrow/types"
	markettypes "github.com/gpunet/gpunet/x/market/types"
	providertypes "github.com/gpunet/gpunet/x/provider/types"
)

// Encoding is the app's codecs, as a client needs them.
type Encoding struct {
	TxConfig client.TxConfig
	Codec    codec.Codec
	Registry codectypes.InterfaceRegistry
}

// NewEncoding builds the codecs a client needs (crypto keys, transactions,
// accounts, bank and gpunet's messages) without wiring the whole app: the
// daemon stays small.
func NewEncoding() (Encoding, error) {
	signing, err := authtx.NewDefaultSigningOptions()
	if err != nil {
		return Encoding{}, err
	}
	ir, err := codectypes.NewInterfaceRegistryWithOptions(codectypes.InterfaceRegistryOptions{ProtoFiles: proto.HybridResolver, SigningOptions: *signing})
	if err != nil {
		return Encoding{}, err
	}
	std.RegisterInterfaces(ir)
	authtypes.RegisterInterfaces(ir)
	banktypes.RegisterInterfaces(ir)
	markettypes.RegisterInterfaces(ir)
	providertypes.RegisterInterfaces(ir)
	escrowtypes.RegisterInterfaces(ir)
	cdc := codec.NewProtoCodec(ir)
	return Encoding{TxConfig: authtx.NewTxConfig(cdc, authtx.DefaultSignModes), Codec: cdc, Registry: ir}, nil
}

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
	Enc     Encoding
	ChainID string
	RPC     *rpchttp.HTTP
	Conn    *grpc.ClientConn
	Keyring keyring.Keyring
	KeyName string
	Address sdk.AccAddress

	Market   markettypes.QueryClient
	Provider providertypes.QueryClient
	Auth     authtypes.QueryClient
	Tx       txtypes.ServiceClient
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
	enc, err := NewEncoding()
	if err != nil {
		return nil, fmt.Errorf("wire codecs: %w", err)
	}
	rpc, err := rpchttp.New(opts.RPC, "/websocket")
	if err != nil {
		return nil, fmt.Errorf("chain rpc %s: %w", opts.RPC, err)
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
	c := &Client{
		Enc: enc, ChainID: opts.ChainID, RPC: rpc, Conn: conn, KeyName: opts.KeyName,
		Market:   markettypes.NewQueryClient(conn),
		Provider: providertypes.NewQueryClient(conn),
		Auth:     authtypes.NewQueryClient(conn),
		Tx:       txtypes.NewServiceClient(conn),
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
		kr, err := keyring.New(sdk.KeyringServiceName(), opts.KeyringBackend, dir, input, enc.Codec)
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
		c.Keyring, c.Address = kr, addr
	}
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
	res, err := c.Auth.Account(ctx, &authtypes.QueryAccountRequest{Address: addr.String()})
	if err != nil {
		return 0, 0, err
	}
	var acc sdk.AccountI
	if err := c.Enc.Registry.UnpackAny(res.Account, &acc); err != nil {
		return 0, 0, err
	}
	return acc.GetAccountNumber(), acc.GetSequence(), nil
}

// AccountPubKey returns the public key on chain for addr (nil if the
// account never signed).
func (c *Client) AccountPubKey(ctx context.Context, addr string) ([]byte, error) {
	res, err := c.Auth.Account(ctx, &authtypes.QueryAccountRequest{Address: addr})
	if err != nil {
		return nil, err
	}
	var acc sdk.AccountI
	if err := c.Enc.Registry.UnpackAny(res.Account, &acc); err != nil {
		return nil, err
	}
	if acc.GetPubKey() == nil {
		return nil, nil
	}
	return acc.GetPubKey().Bytes(), nil
}
