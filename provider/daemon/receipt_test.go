package daemon

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/cosmos/cosmos-sdk/crypto/hd"
	"github.com/cosmos/cosmos-sdk/crypto/keyring"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/gpunet/gpunet/internal/clientcodec"
	"github.com/gpunet/gpunet/provider/config"
	"github.com/gpunet/gpunet/tenant"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// A receipt the daemon signs verifies on chain terms (the provider's
// account key over ReceiptSignBytes) after the tenant's round trip through
// its JSON form; changed in any part, it no longer does.
func TestManifestReceiptVerifies(t *testing.T) {
	enc, err := clientcodec.New()
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.NewInMemory(enc.Codec)
	rec, _, err := kr.NewMnemonic("provider", keyring.English, sdk.FullFundraiserPath, keyring.DefaultBIP39Passphrase, hd.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := rec.GetPubKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	cfg.Chain.ID = "gpunet-test-1"
	d := &Daemon{cfg: cfg, keys: kr, keyName: "provider"}
	id := markettypes.BidID{Order: markettypes.OrderID{Owner: "gpunet1owner", Dseq: 7, Gseq: 1, Oseq: 2}, Provider: "gpunet1provider"}
	hash := bytes.Repeat([]byte{0xab}, 32)

	r, err := d.signReceipt(id, hash)
	if err != nil {
		t.Fatal(err)
	}
	if r.ManifestHash != hex.EncodeToString(hash) || r.OSeq != 2 || r.ChainID != "gpunet-test-1" {
		t.Fatalf("receipt %+v", r)
	}
	msg, err := tenant.ReceiptMsg(r)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(m markettypes.ManifestReceipt, chainID string) bool {
		return pub.VerifySignature(markettypes.ReceiptSignBytes(chainID, m.Lease, m.ManifestHash, m.IssuedAt), m.Signature)
	}
	if !verify(msg, "gpunet-test-1") {
		t.Fatal("the daemon's receipt does not verify")
	}
	if verify(msg, "another-chain-1") {
		t.Error("a receipt verifies on another chain")
	}
	other := msg
	other.Lease.Order.Oseq = 3
	if verify(other, "gpunet-test-1") {
		t.Error("a receipt verifies for another lease")
	}
	other = msg
	other.IssuedAt++
	if verify(other, "gpunet-test-1") {
		t.Error("a receipt verifies with another time")
	}
}
