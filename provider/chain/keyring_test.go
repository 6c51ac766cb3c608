package chain

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cosmos/cosmos-sdk/crypto/hd"
	"github.com/cosmos/cosmos-sdk/crypto/keyring"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/tx/signing"
)

// A daemon without a terminal opens an encrypted file keyring with the
// passphrase it was given, and fails clearly with a wrong one; the key it
// opened signs without going back to the keyring.
func TestDialOpensAFileKeyringWithItsPassphrase(t *testing.T) {
	cdc, _ := keyCodec()
	dir := t.TempDir()
	kr, err := keyring.New(sdk.KeyringServiceName(), keyring.BackendFile, dir, strings.NewReader(strings.Repeat("s3cret-pass\n", 8)), cdc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := kr.NewMnemonic("provider", keyring.English, sdk.FullFundraiserPath, keyring.DefaultBIP39Passphrase, hd.Secp256k1); err != nil {
		t.Fatal(err)
	}
	opts := Options{ChainID: "gpunet-1", RPC: "http://127.0.0.1:1", GRPC: "127.0.0.1:1", KeyName: "provider", KeyringBackend: keyring.BackendFile, KeyringDir: dir, Passphrase: "s3cret-pass"}
	c, err := Dial(opts)
	if err != nil {
		t.Fatalf("dial with the passphrase: %v", err)
	}
	if c.Address.Empty() || c.PubKey == nil || !sdk.AccAddress(c.PubKey.Address()).Equals(c.Address) {
		t.Errorf("address %s, public key %v: want the keyring's key and its address", c.Address, c.PubKey)
	}
	// The key is unlocked once: it signs with the keyring gone, and signs
	// what the keyring signs.
	msg := []byte("manifest receipt")
	want, _, err := kr.Sign("provider", msg, signing.SignMode_SIGN_MODE_DIRECT)
	if err != nil {
		t.Fatal(err)
	}
	moved := dir + ".moved"
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	got, pub, err := c.Key.Sign("provider", msg, signing.SignMode_SIGN_MODE_DIRECT)
	if err != nil {
		t.Fatalf("sign with the keyring moved away: %v", err)
	}
	if !bytes.Equal(got, want) || !pub.Equals(c.PubKey) || !c.PubKey.VerifySignature(msg, got) {
		t.Fatal("the unlocked key's signature is not the keyring's")
	}
	if err := os.Rename(moved, dir); err != nil {
		t.Fatal(err)
	}
	// The unlocked key never prints: not in a log line, not in an error.
	priv := c.Key.(memKey).priv
	for _, shown := range []string{fmt.Sprintf("%v %+v %#v %s", c.Key, c.Key, c.Key, c.Key), fmt.Sprintf("%+v", *c)} {
		if strings.Contains(strings.ToLower(shown), hex.EncodeToString(priv.Bytes())) || strings.Contains(shown, fmt.Sprint(priv.Bytes())) {
			t.Fatalf("the private key is printed: %s", shown)
		}
	}
	_ = c.Close()
	opts.Passphrase = "wrong"
	if _, err := Dial(opts); err == nil {
		t.Error("a wrong passphrase opened the keyring")
	}
}

// A key the keyring cannot sign with directly (an offline record here; a
// Ledger's is refused the same way) stops the daemon at start with the
// key's name and what to do, instead of failing every bid it then sends.
func TestDialRefusesAKeyItCannotSignWith(t *testing.T) {
	cdc, _ := keyCodec()
	dir := t.TempDir()
	kr, err := keyring.New(sdk.KeyringServiceName(), keyring.BackendTest, dir, nil, cdc)
	if err != nil {
		t.Fatal(err)
	}
	rec, _, err := kr.NewMnemonic("hot", keyring.English, sdk.FullFundraiserPath, keyring.DefaultBIP39Passphrase, hd.Secp256k1)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := rec.GetPubKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kr.SaveOfflineKey("watch-only", pub); err != nil {
		t.Fatal(err)
	}
	opts := Options{ChainID: "gpunet-1", RPC: "http://127.0.0.1:1", GRPC: "127.0.0.1:1", KeyName: "watch-only", KeyringBackend: keyring.BackendTest, KeyringDir: dir}
	_, err = Dial(opts)
	if err == nil || !strings.Contains(err.Error(), `key "watch-only" (offline) cannot sign`) || !strings.Contains(err.Error(), "import the provider's key") {
		t.Fatalf("dial with an offline key: %v", err)
	}
	opts.KeyName = "hot"
	c, err := Dial(opts)
	if err != nil {
		t.Fatalf("dial with the local key: %v", err)
	}
	_ = c.Close()
}

// A record whose private key is not its public key's (a damaged or
// tampered keyring) is refused: the daemon would sign for an address
// that is not the one it bids as.
func TestUnlockedRefusesAPrivateKeyThatIsNotThePublicKeys(t *testing.T) {
	kr, _, pub := newKey(t)
	rec, err := kr.Key("provider")
	if err != nil {
		t.Fatal(err)
	}
	_, _, otherPub := newKey(t)
	if _, err := unlocked(rec, otherPub); err == nil || !strings.Contains(err.Error(), `key "provider": its private key does not match its public key`) {
		t.Fatalf("unlocked with another key's public key: %v", err)
	}
	k, err := unlocked(rec, pub)
	if err != nil {
		t.Fatal(err)
	}
	sig, signer, err := k.Sign("provider", []byte("bid"), 0)
	if err != nil || !signer.Equals(pub) || !pub.VerifySignature([]byte("bid"), sig) {
		t.Fatalf("unlocked key signs %x as %v (%v), want a signature by %v", sig, signer, err, pub)
	}
}
