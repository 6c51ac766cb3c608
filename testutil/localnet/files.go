package localnet

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// editTOML sets keys in place in a TOML file, section by section ("" is the
// top level), keeping comments and layout. Every key must already exist: the
// files are the ones gpunetd init wrote, so a missing key means the file
// format changed and silently appending would hide that.
func editTOML(path string, sections map[string]map[string]string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := strings.Split(string(raw), "\n")
	pending := map[string]map[string]string{}
	for s, kv := range sections {
		pending[s] = map[string]string{}
		for k, v := range kv {
			pending[s][k] = v
		}
	}
	section := ""
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") && strings.HasSuffix(t, "]") {
			section = strings.Trim(t, "[]")
			continue
		}
		kv := pending[section]
		if kv == nil {
			continue
		}
		eq := strings.IndexByte(t, '=')
		if eq <= 0 || strings.HasPrefix(t, "#") {
			continue
		}
		key := strings.TrimSpace(t[:eq])
		if v, ok := kv[key]; ok {
			lines[i] = key + " = " + v
			delete(kv, key)
		}
	}
	var missing []string
	for s, kv := range pending {
		for k := range kv {
			missing = append(missing, fmt.Sprintf("[%s] %s", s, k))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%s: keys not found: %s", path, strings.Join(missing, ", "))
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644)
}

func quote(s string) string { return strconv.Quote(s) }

// applyGenesisOverrides deep-merges overrides into the genesis file: maps
// merge key by key, anything else (numbers, strings, lists) replaces.
func applyGenesisOverrides(path string, overrides map[string]any) error {
	if len(overrides) == 0 {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var gen map[string]any
	if err := json.Unmarshal(raw, &gen); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := mergeInto(gen, normalise(overrides).(map[string]any), "genesis"); err != nil {
		return err
	}
	out, err := json.MarshalIndent(gen, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

func mergeInto(dst, src map[string]any, where string) error {
	for k, v := range src {
		here := where + "." + k
		cur, exists := dst[k]
		if !exists {
			return fmt.Errorf("config.yml %s: no such field in the generated genesis", here)
		}
		srcMap, srcIsMap := v.(map[string]any)
		dstMap, dstIsMap := cur.(map[string]any)
		if srcIsMap && dstIsMap {
			if err := mergeInto(dstMap, srcMap, here); err != nil {
				return err
			}
			continue
		}
		dst[k] = v
	}
	return nil
}

// normalise turns YAML scalars into the JSON shapes the SDK expects: numbers
// become strings (the SDK encodes integers and decimals as strings), and
// nested maps get string keys.
func normalise(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = normalise(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normalise(e)
		}
		return out
	case int:
		return strconv.Itoa(t)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	default:
		return t
	}
}
