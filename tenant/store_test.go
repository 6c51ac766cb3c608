package tenant

import (
	"testing"

	"github.com/gpunet/gpunet/provider/api"
)

// Receipts are kept per lease: a newer one for the same lease replaces the
// older, others accumulate, and a deployment without any has none.
func TestStoreKeepsReceipts(t *testing.T) {
	s := NewStore(t.TempDir())
	if rs, err := s.LoadReceipts("gpunet1owner", 3); err != nil || len(rs) != 0 {
		t.Fatalf("no receipts yet: %v %v", rs, err)
	}
	a := api.Receipt{Owner: "gpunet1owner", DSeq: 3, GSeq: 1, OSeq: 1, Provider: "gpunet1a", ManifestHash: "aa", IssuedAt: 1, Signature: []byte{1}}
	b := a
	b.OSeq, b.Provider = 2, "gpunet1b"
	if err := s.SaveReceipts("gpunet1owner", 3, []api.Receipt{a}); err != nil {
		t.Fatal(err)
	}
	newer := a
	newer.IssuedAt = 2
	if err := s.SaveReceipts("gpunet1owner", 3, []api.Receipt{newer, b}); err != nil {
		t.Fatal(err)
	}
	rs, err := s.LoadReceipts("gpunet1owner", 3)
	if err != nil || len(rs) != 2 || rs[0].IssuedAt != 2 || rs[1].Provider != "gpunet1b" {
		t.Fatalf("receipts %+v %v", rs, err)
	}
	if _, err := ReceiptMsg(api.Receipt{ManifestHash: "zz"}); err == nil {
		t.Error("a receipt with a bad hash converts")
	}
}
