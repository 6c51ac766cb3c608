//go:build !cgo

package inventory

// DetectNVML cannot work without cgo.
func DetectNVML() ([]GPU, string, error) { return nil, "", ErrNVMLUnavailable }
