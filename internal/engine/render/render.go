// Package render executes ExternalSecret templates (engineVersion v2): Go
// text/template with sprig's functions, minus every function that reads the
// environment, files, DNS or the network, plus the helpers External Secrets
// Operator users rely on (fromJson, toYaml, fromYaml, filterPEM). Template
// errors are reduced to their location so a value never reaches an error
// message.
package render

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"sigs.k8s.io/yaml"
)

// Target is the part of the Secret a template renders into.
type Target string

const (
	TargetData        Target = "Data"
	TargetLabels      Target = "Labels"
	TargetAnnotations Target = "Annotations"
)

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
}

// removed lists sprig functions that reach outside the process.
var removed = []string{"env", "expandenv", "getHostByName"}

// FuncMap returns the template functions. It builds a new map each time so
// callers can never share mutable state.
func FuncMap() template.FuncMap {
	fm := sprig.TxtFuncMap()
	for _, n := range removed {
		delete(fm, n)
	}
	fm["fromJson"] = fromJSON
	fm["toYaml"] = toYAML
	fm["fromYaml"] = fromYAML
	fm["filterPEM"] = filterPEM
	return fm
}

// Render executes items over data (each value available as .KEY, a string).
func Render(items []Item, data map[string][]byte) (Output, error) {
	out := Output{Data: map[string][]byte{}, Labels: map[string]string{}, Annotations: map[string]string{}}
	ctx := make(map[string]string, len(data))
	for k, v := range data {
		ctx[k] = string(v)
	}
	for _, it := range items {
		text, err := execute(it, ctx)
		if err != nil {
			return Output{}, err
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
			put(&out, it.Target, k, []byte(scalar(kv[k])))
		}
	}
	return out, nil
}

// Validate parses a template without executing it.
func Validate(name, text string) error {
	_, err := template.New(name).Funcs(FuncMap()).Option("missingkey=error").Parse(text)
	if err != nil {
		return fmt.Errorf("parsing template %s: %w", name, err)
	}
	return nil
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

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func execute(it Item, ctx map[string]string) ([]byte, error) {
	t, err := template.New(it.Source).Funcs(FuncMap()).Option("missingkey=error").Parse(it.Template)
	if err != nil {
		return nil, fmt.Errorf("parsing template %s: %w", it.Source, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, ctx); err != nil {
		return nil, fmt.Errorf("executing template %s: %s", it.Source, Sanitize(err))
	}
	return buf.Bytes(), nil
}

var calling = regexp.MustCompile(`^(.*?error calling [A-Za-z0-9_]+):`)

// Sanitize reduces a template execution error to its location and the
// function that failed, dropping the cause, which may quote the value.
func Sanitize(err error) string {
	msg := err.Error()
	if m := calling.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	var ee template.ExecError
	if errors.As(err, &ee) {
		// Errors raised by text/template itself name keys and types, not values.
		return msg
	}
	if i := strings.Index(msg, ": "); i > 0 {
		return msg[:i]
	}
	return "template failed"
}

func fromJSON(s string) (any, error) {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, errors.New("value is not valid JSON")
	}
	return v, nil
}

func toYAML(v any) (string, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return "", errors.New("cannot encode as YAML")
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

func fromYAML(s string) (any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, errors.New("value is not valid YAML")
	}
	return v, nil
}

// filterPEM keeps the PEM blocks of the given type ("CERTIFICATE",
// "PRIVATE KEY", ...), as ESO's helper does.
func filterPEM(blockType, s string) (string, error) {
	rest := []byte(s)
	var out bytes.Buffer
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == blockType {
			if err := pem.Encode(&out, b); err != nil {
				return "", errors.New("cannot encode PEM")
			}
		}
	}
	if out.Len() == 0 {
		return "", fmt.Errorf("no PEM block of type %q", blockType)
	}
	return out.String(), nil
}
