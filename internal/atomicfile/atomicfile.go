// Package atomicfile writes files that survive a crash or a power loss
// whole: the old content or the new, never half of either, and never the
// old again once a write has returned.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// Write replaces path with data (mode 0600), creating its directory
// (0700) when missing: it writes a temporary file beside it, syncs it,
// renames it over path and syncs the directory, so the rename itself is
// on disk when Write returns. Concurrent writers of one path must take
// turns: they share the temporary file.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
