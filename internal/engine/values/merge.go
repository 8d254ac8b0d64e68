package values

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tidwall/gjson"
)

// Merge strategies, conflict and priority policies of ESO's rewrite.merge.
const (
	MergeStrategyExtract = "Extract"
	MergeStrategyJSON    = "JSON"

	MergeConflictError  = "Error"
	MergeConflictIgnore = "Ignore"

	MergePriorityStrict         = "Strict"
	MergePriorityIgnoreNotFound = "IgnoreNotFound"
)

// MergeOptions is one rewrite.merge step, as ESO defines it.
type MergeOptions struct {
	// Strategy: Extract (default) hoists the fields of every value to the
	// top level, replacing the map; JSON merges them into one JSON object
	// under Into, next to the keys of the map.
	Strategy string
	// Into is the key of the merged object (strategy JSON, required).
	Into string
	// Priority are keys merged last, in this order (later wins); the other
	// keys are merged first, in alphabetical order.
	Priority []string
	// PriorityPolicy: Strict (default) fails when a priority key is not in
	// the map; IgnoreNotFound skips it.
	PriorityPolicy string
	// ConflictPolicy: Error (default) fails when two values have a field
	// of the same name; Ignore lets the later one win.
	ConflictPolicy string
}

// Merge applies one rewrite.merge step to m. Every value must be a JSON
// object. Errors name keys and field names, never values.
func Merge(m map[string][]byte, opts MergeOptions) (map[string][]byte, error) {
	if opts.Strategy == MergeStrategyJSON && opts.Into == "" {
		return nil, fmt.Errorf("rewrite merge: strategy JSON needs into")
	}
	order, err := mergeOrder(m, opts)
	if err != nil {
		return nil, err
	}
	fields := map[string]gjson.Result{}
	var conflicts []string
	for _, k := range order {
		doc := bytes.TrimSpace(m[k])
		r := gjson.ParseBytes(doc)
		if !gjson.ValidBytes(doc) || !r.IsObject() {
			return nil, fmt.Errorf("rewrite merge: the value of key %q is not a JSON object", k)
		}
		r.ForEach(func(f, v gjson.Result) bool {
			if _, dup := fields[f.Str]; dup && !slices.Contains(conflicts, f.Str) {
				conflicts = append(conflicts, f.Str)
			}
			fields[f.Str] = v
			return true
		})
	}
	if len(conflicts) > 0 && opts.ConflictPolicy != MergeConflictIgnore {
		sort.Strings(conflicts)
		return nil, fmt.Errorf("rewrite merge: more than one value has the field %s (conflictPolicy Ignore lets the last merged win)", quoteAll(conflicts))
	}
	if opts.Strategy == MergeStrategyJSON {
		return mergeInto(m, fields, opts.Into)
	}
	out := make(map[string][]byte, len(fields))
	for f, v := range fields {
		out[f] = fieldBytes(v)
	}
	return out, nil
}

// mergeOrder is the order keys are merged in: every key not in the
// priority list alphabetically, then the priority keys as listed.
func mergeOrder(m map[string][]byte, opts MergeOptions) ([]string, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		if !slices.Contains(opts.Priority, k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range opts.Priority {
		if _, ok := m[k]; !ok {
			if opts.PriorityPolicy == MergePriorityIgnoreNotFound {
				continue
			}
			return nil, fmt.Errorf("rewrite merge: priority key %q is not among the keys (priorityPolicy IgnoreNotFound skips it)", k)
		}
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// mergeInto keeps m and adds the merged fields as one JSON object under
// into (replacing a key of that name).
func mergeInto(m map[string][]byte, fields map[string]gjson.Result, into string) (map[string][]byte, error) {
	obj := make(map[string]json.RawMessage, len(fields))
	for f, v := range fields {
		obj[f] = json.RawMessage(v.Raw)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, fmt.Errorf("rewrite merge: encoding the merged object: %w", ErrNotJSON)
	}
	out := make(map[string][]byte, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[into] = bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return out, nil
}

// fieldBytes is a field's value as a Secret holds it: a string as its
// text, null as empty, anything else as its JSON (as values.Fields).
func fieldBytes(v gjson.Result) []byte {
	switch v.Type {
	case gjson.String:
		return []byte(v.Str)
	case gjson.Null:
		return []byte{}
	default:
		return []byte(v.Raw)
	}
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}
