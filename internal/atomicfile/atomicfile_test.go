package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// Write creates the directory, replaces what was there, leaves no
// temporary file and keeps the file to its owner.
func TestWriteReplacesWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "state.json")
	for _, body := range []string{`{"height":1}`, `{"h":2}`} {
		if err := Write(path, []byte(body)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != body {
			t.Fatalf("read %q (%v), want %q", got, err, body)
		}
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left: %v", err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if err := Write(filepath.Join(path, "under-a-file"), nil); err == nil {
		t.Fatal("wrote under a regular file")
	}
}
