package main

import (
	"testing"

	"github.com/gpunet/gpunet/sdl"
)

// The bench's SDL files parse into one job group with the resources asked.
func TestBenchSDLs(t *testing.T) {
	for name, c := range map[string]struct {
		src       string
		cpuMillis uint64
	}{"job": {jobSDL, 500}, "footprint": {footprintSDL, 100}} {
		d, err := sdl.Parse([]byte(c.src))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(d.Groups) != 1 || d.Groups[0].Resources[0].CpuMillis != c.cpuMillis || d.Manifest.Groups[0].Services[0].Restart != "never" {
			t.Fatalf("%s: groups %+v", name, d.Groups)
		}
	}
}
