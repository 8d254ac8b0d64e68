package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// Target paths place rendered output inside a manifest target that is not
// a Secret (ESO's templateFrom[].target such as "spec.database" or
// "spec.rules[0].from[0].source.notRemoteIpBlocks"): dot-separated keys,
// each optionally followed by [n] indexes.

// MaxPathIndex is the largest array index a target path may name; a path
// creates the elements up to it, so the bound caps the memory one path can
// make the operator allocate (ESO's bound).
const MaxPathIndex = 10000

// maxPathSteps bounds the depth of a target path.
const maxPathSteps = 64

// PathStep is one step of a target path: a map key, or (IsIndex) an array
// index.
type PathStep struct {
	Key     string
	Index   int
	IsIndex bool
}

// ParsePath parses a target path. It refuses an empty segment, an
// unterminated or non-numeric index, a negative index or one above
// MaxPathIndex, and a path that starts with an index. Its errors quote the
// path (spec text, never a value).
func ParsePath(path string) ([]PathStep, error) {
	var steps []PathStep
	for seg := range strings.SplitSeq(path, ".") {
		name, rest := seg, ""
		if i := strings.IndexByte(seg, '['); i >= 0 {
			name, rest = seg[:i], seg[i:]
		}
		if name == "" && rest == "" {
			return nil, fmt.Errorf("target path %q has an empty segment", path)
		}
		if strings.ContainsRune(name, ']') {
			return nil, fmt.Errorf("target path %q has a ']' without '['", path)
		}
		if name != "" {
			steps = append(steps, PathStep{Key: name})
		}
		for rest != "" {
			if rest[0] != '[' {
				return nil, fmt.Errorf("target path %q: expected '[' after an index", path)
			}
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("target path %q has an unterminated '['", path)
			}
			digits := rest[1:end]
			idx, err := strconv.Atoi(digits)
			if err != nil || digits == "" || digits[0] == '+' || digits[0] == '-' {
				return nil, fmt.Errorf("target path %q: an index must be a number from 0 to %d", path, MaxPathIndex)
			}
			if idx > MaxPathIndex {
				return nil, fmt.Errorf("target path %q: index %d is above the maximum %d", path, idx, MaxPathIndex)
			}
			steps = append(steps, PathStep{Index: idx, IsIndex: true})
			rest = rest[end+1:]
		}
		if len(steps) > maxPathSteps {
			return nil, fmt.Errorf("target path %q has more than %d steps", path, maxPathSteps)
		}
	}
	if len(steps) == 0 || steps[0].IsIndex {
		return nil, fmt.Errorf("target path %q must start with a key", path)
	}
	return steps, nil
}

// Place puts v at steps inside root, creating the maps and arrays on the
// way (arrays grow to the index, new elements null). At the end of the
// path, with merge, a map v is merged into a map already there (its keys
// win); otherwise v replaces what is there. A path of one key always
// replaces (ESO: "spec" replaces the whole spec). Errors name the step, never
// a value.
func Place(root map[string]any, steps []PathStep, v any, merge bool) error {
	if len(steps) == 0 || steps[0].IsIndex {
		return errors.New("a target path must start with a key")
	}
	if len(steps) == 1 {
		merge = false
	}
	leaf := func(old any) any {
		if merge {
			om, ok1 := old.(map[string]any)
			nm, ok2 := v.(map[string]any)
			if ok1 && ok2 {
				maps.Copy(om, nm)
				return om
			}
		}
		return v
	}
	_, err := place(root, steps, 0, leaf)
	return err
}

func place(node any, steps []PathStep, at int, leaf func(any) any) (any, error) {
	st := steps[at]
	if st.IsIndex {
		s, ok := node.([]any)
		if !ok && node != nil {
			return nil, fmt.Errorf("step %d of the target path expects an array, found %s", at+1, kindOf(node))
		}
		if st.Index >= len(s) {
			grown := make([]any, st.Index+1)
			copy(grown, s)
			s = grown
		}
		if at == len(steps)-1 {
			s[st.Index] = leaf(s[st.Index])
			return s, nil
		}
		child, err := place(s[st.Index], steps, at+1, leaf)
		if err != nil {
			return nil, err
		}
		s[st.Index] = child
		return s, nil
	}
	m, ok := node.(map[string]any)
	if !ok && node != nil {
		return nil, fmt.Errorf("step %d of the target path (%q) expects a map, found %s", at+1, st.Key, kindOf(node))
	}
	if m == nil {
		m = map[string]any{}
	}
	if at == len(steps)-1 {
		m[st.Key] = leaf(m[st.Key])
		return m, nil
	}
	child, err := place(m[st.Key], steps, at+1, leaf)
	if err != nil {
		return nil, err
	}
	m[st.Key] = child
	return m, nil
}

// kindOf names the JSON kind of v (never its content).
func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a map"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	}
	return "a value"
}

// ParseValue parses rendered text as a YAML (or JSON) document into the
// form an unstructured Kubernetes object holds: maps, arrays, strings,
// booleans, int64 for integers, float64 for other numbers. Its error never
// quotes the text.
func ParseValue(text []byte) (any, error) {
	j, err := yaml.YAMLToJSON(text)
	if err != nil {
		return nil, errors.New("the rendered document is not valid YAML")
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("the rendered document is not valid YAML")
	}
	return normalizeNumbers(v), nil
}

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	}
	return v
}
