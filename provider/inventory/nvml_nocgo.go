//go:build !cgo

package inventory

// DetectNVML cannot work without cgo.
func DetectNVML() ([]GPU, string, error) { return nil, "", ErrNVMLUnavailable }

// GPUUsage cannot work without cgo.
func GPUUsage([]string) (map[string]Usage, error) { return nil, ErrNVMLUnavailable }
