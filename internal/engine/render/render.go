// Package render executes ExternalSecret templates (engineVersion v2): Go
// text/template with sprig's functions, minus every function that reads the
// environment, files, DNS or the network, plus the helpers External Secrets
// Operator users rely on (fromJson, toYaml, fromYaml, filterPEM, and the
// PKCS#12, certificate-chain, JSON Web Key and RSA helpers).
//
// Templates run in a Sandbox: a bounded pool, a deadline, an output limit
// enforced while writing, a step budget checked at every range iteration,
// template invocation and function call, and bounded versions of the
// functions whose cost grows with an argument. Execution errors are reduced
// to their location and a fixed description so a value never reaches an
// error message.
package render

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/template"

	"sigs.k8s.io/yaml"
)

// Target is the part of the Secret a template renders into.
type Target string

const (
	TargetData        Target = "Data"
	TargetLabels      Target = "Labels"
	TargetAnnotations Target = "Annotations"
)

// IsPath says whether t is a target path (path.go: "spec.database") rather
// than Data, Labels or Annotations; only manifest targets that are not
// Secrets accept one.
func (t Target) IsPath() bool {
	return t != "" && t != TargetData && t != TargetLabels && t != TargetAnnotations
}

// Item is one template: either a single value (Key is the output key) or,
// with KeysAndValues, a document whose YAML/JSON object gives keys and values.
type Item struct {
	Key           string
	Template      string
	KeysAndValues bool
	Target        Target
	// Source names where the template came from, for error messages.
	Source string
}

// Output is what the templates rendered.
type Output struct {
	Data        map[string][]byte
	Labels      map[string]string
	Annotations map[string]string
	// Fields are the outputs of items whose Target is a path, in item
	// order, for the engine to place into a manifest target (Place).
	Fields []Field
}

// Field is rendered output to place at a path of a manifest target.
type Field struct {
	Steps []PathStep
	Value any
	// Merge: a map Value is merged into a map already at the path.
	Merge bool
}

// FuncMap returns the functions templates may call: sprig's minus those
// that reach outside the process, ESO's helpers, and bounded versions of
// those whose cost grows with an argument (see docs/templates.md). It
// builds a new map each time so callers never share mutable state.
func FuncMap() template.FuncMap {
	return parseFuncs(rawFuncs())
}

// Render executes items over data (each value available as .KEY, a string)
// under the default limits. It has a pool of its own, so it bounds one
// call but not the operator: the engine renders through a shared Sandbox.
func Render(items []Item, data map[string][]byte) (Output, error) {
	return NewSandbox(Limits{}).Render(context.Background(), items, data)
}

// Validate parses a template without executing it.
func Validate(name, text string) error {
	_, err := template.New(name).Funcs(FuncMap()).Option("missingkey=error").Parse(text)
	if err != nil {
		return fmt.Errorf("parsing template %s: %w", name, err)
	}
	return nil
}

// render executes items on the calling goroutine under m's budget.
func (s *Sandbox) render(ctx context.Context, items []Item, data map[string][]byte) (Output, error) {
	out := Output{Data: map[string][]byte{}, Labels: map[string]string{}, Annotations: map[string]string{}}
	dot := make(map[string]string, len(data))
	for k, v := range data {
		dot[k] = string(v)
	}
	m := newMeter(ctx, s.limits)
	for _, it := range items {
		text, err := s.execute(m, it, dot)
		if err != nil {
			return Output{}, err
		}
		if it.Target.IsPath() {
			f, err := pathField(it, text)
			if err != nil {
				return Output{}, err
			}
			out.Fields = append(out.Fields, f)
			continue
		}
		if !it.KeysAndValues {
			put(&out, it.Target, it.Key, text)
			continue
		}
		var kv map[string]any
		if err := yaml.Unmarshal(text, &kv); err != nil {
			return Output{}, fmt.Errorf("template %s: the rendered document is not a map of keys to values", it.Source)
		}
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, err := scalar(kv[k])
			if err != nil {
				return Output{}, fmt.Errorf("template %s: %w", it.Source, err)
			}
			put(&out, it.Target, k, []byte(v))
		}
	}
	return out, nil
}

// pathField turns the output of an item whose Target is a path into a
// Field, as ESO places it: a document (KeysAndValues) is parsed and merged
// at the path; a single value goes under its key in spec when the path is
// "spec", else replaces what is at the path, parsed as YAML when it parses.
func pathField(it Item, text []byte) (Field, error) {
	if !it.KeysAndValues && strings.EqualFold(string(it.Target), "spec") {
		return Field{Steps: []PathStep{{Key: "spec"}, {Key: it.Key}}, Value: string(text)}, nil
	}
	steps, err := ParsePath(string(it.Target))
	if err != nil {
		return Field{}, fmt.Errorf("template %s: %w", it.Source, err)
	}
	if it.KeysAndValues {
		v, err := ParseValue(text)
		if err != nil {
			return Field{}, fmt.Errorf("template %s: %w", it.Source, err)
		}
		return Field{Steps: steps, Value: v, Merge: true}, nil
	}
	v, err := ParseValue(text)
	if err != nil {
		v = string(text)
	}
	return Field{Steps: steps, Value: v}, nil
}

func put(out *Output, t Target, k string, v []byte) {
	switch t {
	case TargetLabels:
		out.Labels[k] = string(v)
	case TargetAnnotations:
		out.Annotations[k] = string(v)
	default:
		out.Data[k] = v
	}
}

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case nil:
		return "", nil
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return "", errors.New("the value cannot be encoded as JSON")
		}
		return string(b), nil
	}
}

// execute parses, instruments and runs one template under m.
func (s *Sandbox) execute(m *meter, it Item, dot map[string]string) ([]byte, error) {
	t, err := s.parse(it.Source, it.Template)
	if err != nil {
		return nil, err
	}
	names := instrument(t, s.enter, s.step)
	fm := make(template.FuncMap, len(names)+2)
	for name := range names {
		if _, ok := s.funcs[name]; ok {
			fm[name] = m.wrap(meteredFunc(m, name, s.raw))
		}
	}
	fm[stepFunc] = func() (string, error) { return "", m.step() }
	fm[enterFunc] = func() (string, error) { return "", m.enter() }
	t.Funcs(fm)
	w := &limitedWriter{m: m}
	if err := t.Execute(w, dot); err != nil {
		if be, ok := isBudget(err); ok {
			return nil, fmt.Errorf("executing template %s: %s%w", it.Source, location(it.Source, err), be)
		}
		if cerr := m.ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			// The caller's context ended (shutdown, its own deadline).
			return nil, fmt.Errorf("executing template %s: %w", it.Source, cerr)
		}
		return nil, fmt.Errorf("executing template %s: %s", it.Source, sanitize(it.Source, err))
	}
	return w.buf.Bytes(), nil
}

func fromJSON(s string) (any, error) {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, safeError("value is not valid JSON")
	}
	return v, nil
}

func toYAML(v any) (string, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return "", safeError("cannot encode as YAML")
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

func fromYAML(s string) (any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, safeError("value is not valid YAML")
	}
	return v, nil
}

// filterPEM keeps the PEM blocks of the given type ("CERTIFICATE",
// "PRIVATE KEY", ...; compared without case), as ESO's helper does: text
// before the first block is ignored, and a value with blocks but none of
// the type gives the empty string. A value with no PEM block at all is an
// error.
func filterPEM(blockType, s string) (string, error) {
	if i := strings.Index(s, "-----BEGIN"); i > 0 {
		s = s[i:]
	}
	rest := []byte(s)
	var out bytes.Buffer
	for {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		rest = r
		if strings.EqualFold(b.Type, blockType) {
			if err := pem.Encode(&out, b); err != nil {
				return "", safeError("cannot encode PEM")
			}
		}
	}
	if out.Len() == 0 && len(bytes.TrimSpace(rest)) != 0 {
		return "", safeError("no PEM block found")
	}
	return out.String(), nil
}
