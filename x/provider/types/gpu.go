package types

import (
	"regexp"
	"strings"
)

// droppedGPUWords are words of NVML/vendor product names that do not identify
// the GPU model: vendor and brand names, form factors and memory types.
var droppedGPUWords = map[string]bool{
	"nvidia": true, "geforce": true, "tesla": true, "quadro": true, "generation": true,
	"pcie": true, "sxm": true, "sxm2": true, "sxm3": true, "sxm4": true, "sxm5": true,
	"nvl": true, "hbm2": true, "hbm2e": true, "hbm3": true, "hbm3e": true, "mig": true,
}

var (
	memorySizeWord = regexp.MustCompile(`^\d+(gb|g)$`)
	nonSlugChars   = regexp.MustCompile(`[^a-z0-9]`)
	slugPattern    = regexp.MustCompile(`^[a-z0-9]{1,32}$`)
	proAModel      = regexp.MustCompile(`^a\d{4}$`) // RTX A-series: "RTX A6000" is the a6000
)

// CanonicalGPUModel turns an NVML or vendor product name into the model slug
// used on chain and in SDL files: "NVIDIA H100 80GB HBM3" → "h100",
// "NVIDIA GeForce RTX 4090" → "rtx4090", "NVIDIA A100-SXM4-80GB" → "a100",
// "NVIDIA RTX 6000 Ada Generation" → "rtx6000ada". A name that is already a
// slug comes back unchanged.
func CanonicalGPUModel(name string) string {
	lower := strings.ToLower(name)
	lower = strings.NewReplacer("-", " ", "_", " ", "/", " ").Replace(lower)
	var words []string
	for _, w := range strings.Fields(lower) {
		if droppedGPUWords[w] || memorySizeWord.MatchString(w) {
			continue
		}
		words = append(words, w)
	}
	if len(words) >= 2 && words[0] == "rtx" && proAModel.MatchString(words[1]) {
		words = words[1:]
	}
	return nonSlugChars.ReplaceAllString(strings.Join(words, ""), "")
}

// IsGPUModelSlug reports whether s is a well-formed model slug.
func IsGPUModelSlug(s string) bool { return slugPattern.MatchString(s) }
