package types

import "testing"

func TestCanonicalGPUModel(t *testing.T) {
	cases := map[string]string{
		// data centre
		"NVIDIA H100 80GB HBM3": "h100",
		"NVIDIA H100 PCIe":      "h100",
		"NVIDIA H100 NVL":       "h100",
		"NVIDIA H200":           "h200",
		"NVIDIA H200 NVL":       "h200",
		"NVIDIA H800":           "h800",
		"NVIDIA GH200 480GB":    "gh200",
		"NVIDIA B200":           "b200",
		"NVIDIA A100-SXM4-80GB": "a100",
		"NVIDIA A100-SXM4-40GB": "a100",
		"NVIDIA A100-PCIE-40GB": "a100",
		"NVIDIA A100 80GB PCIe": "a100",
		"NVIDIA A800 80GB PCIe": "a800",
		"NVIDIA A40":            "a40",
		"NVIDIA A30":            "a30",
		"NVIDIA A10":            "a10",
		"NVIDIA A10G":           "a10g",
		"NVIDIA L40S":           "l40s",
		"NVIDIA L40":            "l40",
		"NVIDIA L4":             "l4",
		"Tesla V100-SXM2-16GB":  "v100",
		"Tesla V100-PCIE-32GB":  "v100",
		"Tesla T4":              "t4",
		"Tesla P100-PCIE-16GB":  "p100",
		// workstation
		"NVIDIA RTX A6000":               "a6000",
		"NVIDIA RTX A5000":               "a5000",
		"NVIDIA RTX 6000 Ada Generation": "rtx6000ada",
		"NVIDIA RTX 4000 Ada Generation": "rtx4000ada",
		"Quadro RTX 8000":                "rtx8000",
		// consumer
		"NVIDIA GeForce RTX 4090":       "rtx4090",
		"NVIDIA GeForce RTX 4080 SUPER": "rtx4080super",
		"NVIDIA GeForce RTX 3090 Ti":    "rtx3090ti",
		"NVIDIA GeForce RTX 3080":       "rtx3080",
		"NVIDIA GeForce RTX 5090":       "rtx5090",
		"NVIDIA GeForce GTX 1080 Ti":    "gtx1080ti",
		// already slugs, and odd spacing
		"h100":                        "h100",
		"rtx4090":                     "rtx4090",
		"  NVIDIA  GeForce RTX 4090 ": "rtx4090",
	}
	for in, want := range cases {
		if got := CanonicalGPUModel(in); got != want {
			t.Errorf("CanonicalGPUModel(%q) = %q, want %q", in, got, want)
		}
		if !IsGPUModelSlug(want) {
			t.Errorf("%q is not a valid slug", want)
		}
	}
}

func TestIsGPUModelSlug(t *testing.T) {
	for _, bad := range []string{"", "H100", "rtx 4090", "a100-80gb", "abcdefghijklmnopqrstuvwxyz0123456789"} {
		if IsGPUModelSlug(bad) {
			t.Errorf("IsGPUModelSlug(%q) = true", bad)
		}
	}
}
