// Package values turns fetched provider values into Secret data: it selects
// properties with gjson paths, decodes, converts keys to valid Secret keys and
// rewrites keys, following External Secrets Operator's meanings. Everything
// here is pure; errors never contain values.
package values

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// ErrPropertyNotFound: the property path selects nothing in the value.
var ErrPropertyNotFound = errors.New("property not found")

// ErrNotJSON: a property or extract was asked of a value that is not JSON.
var ErrNotJSON = errors.New("value is not a JSON document")

// Property returns the bytes the property path selects in v. An empty
// property returns the whole value. A field of a structured value is taken
// exactly (binary-safe); otherwise the path is a gjson path over v.Data. A
// string result is returned unquoted; any other JSON result as its JSON text.
func Property(v provider.Value, property string) ([]byte, error) {
	if property == "" {
		return v.Data, nil
	}
	if f, ok := v.Fields[property]; ok {
		return f, nil
	}
	if !gjson.ValidBytes(v.Data) {
		return nil, fmt.Errorf("selecting property %q: %w", property, ErrNotJSON)
	}
	r := gjson.GetBytes(v.Data, property)
	if !r.Exists() {
		return nil, fmt.Errorf("%w: %q", ErrPropertyNotFound, property)
	}
	if r.Type == gjson.String {
		return []byte(r.Str), nil
	}
	return []byte(r.Raw), nil
}

// Extract returns the top-level fields of a structured value (optionally of
// the document a property selects): strings as they are, other JSON values
// as their JSON text, null as empty.
func Extract(v provider.Value, property string) (map[string][]byte, error) {
	if property == "" && v.Fields != nil {
		out := make(map[string][]byte, len(v.Fields))
		for k, f := range v.Fields {
			out[k] = f
		}
		return out, nil
	}
	doc := v.Data
	if property != "" {
		b, err := Property(v, property)
		if err != nil {
			return nil, err
		}
		doc = b
	}
	return Fields(doc)
}

// Fields parses a JSON object into its top-level fields.
func Fields(doc []byte) (map[string][]byte, error) {
	r := gjson.ParseBytes(bytes.TrimSpace(doc))
	if !gjson.ValidBytes(doc) || !r.IsObject() {
		return nil, fmt.Errorf("extracting keys: %w (want an object)", ErrNotJSON)
	}
	out := map[string][]byte{}
	r.ForEach(func(k, val gjson.Result) bool {
		switch val.Type {
		case gjson.String:
			out[k.Str] = []byte(val.Str)
		case gjson.Null:
			out[k.Str] = []byte{}
		default:
			out[k.Str] = []byte(val.Raw)
		}
		return true
	})
	return out, nil
}

// Decode applies a decoding strategy. Auto decodes base64 (standard or URL,
// padded or not) when the whole value is valid base64 and keeps it otherwise.
func Decode(b []byte, strategy esv1.ExternalSecretDecodingStrategy) ([]byte, error) {
	switch strategy {
	case "", esv1.DecodingStrategyNone:
		return b, nil
	case esv1.DecodingStrategyBase64:
		out, err := base64.StdEncoding.DecodeString(string(b))
		if err != nil {
			return nil, errors.New("decoding Base64: value is not valid base64")
		}
		return out, nil
	case esv1.DecodingStrategyBase64URL:
		out, err := base64.URLEncoding.DecodeString(string(b))
		if err != nil {
			return nil, errors.New("decoding Base64URL: value is not valid base64url")
		}
		return out, nil
	case esv1.DecodingStrategyAuto:
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if out, err := enc.DecodeString(string(b)); err == nil {
				return out, nil
			}
		}
		return b, nil
	default:
		return nil, fmt.Errorf("unknown decodingStrategy %q", strategy)
	}
}

// CheckNullBytes enforces nullBytePolicy Fail.
func CheckNullBytes(key string, b []byte, policy esv1.ExternalSecretNullBytePolicy) error {
	if policy == esv1.NullBytePolicyFail && bytes.IndexByte(b, 0) >= 0 {
		return fmt.Errorf("value for key %q contains a NUL byte and nullBytePolicy is Fail", key)
	}
	return nil
}

var invalidKeyChars = regexp.MustCompile(`[^-._a-zA-Z0-9]`)

// ConvertKey makes a remote name a valid Secret key. Default replaces each
// invalid character with "_"; Unicode replaces it with "_U<hex>_" so distinct
// names stay distinct.
func ConvertKey(key string, strategy esv1.ExternalSecretConversionStrategy) string {
	switch strategy {
	case esv1.ConversionStrategyUnicode:
		var b strings.Builder
		for _, r := range key {
			if r < utf8.RuneSelf && !invalidKeyChars.MatchString(string(r)) {
				b.WriteRune(r)
				continue
			}
			fmt.Fprintf(&b, "_U%04x_", r)
		}
		return b.String()
	default:
		return invalidKeyChars.ReplaceAllString(key, "_")
	}
}

// ValidKey says whether k is a valid Secret data key.
func ValidKey(k string) bool {
	return k != "" && len(k) <= 253 && !invalidKeyChars.MatchString(k)
}

// Rewriter renames keys; Transform rewrites use a template and are supplied by
// the caller so this package does not depend on the template engine.
type Rewriter func(key string) (string, error)

// RegexpRewriter returns a Rewriter for a regexp rewrite.
func RegexpRewriter(source, target string) (Rewriter, error) {
	re, err := regexp.Compile(source)
	if err != nil {
		return nil, fmt.Errorf("rewrite regexp %q: %w", source, err)
	}
	return func(k string) (string, error) { return re.ReplaceAllString(k, target), nil }, nil
}

// Rewrite applies the rewriters in order to every key of m. Two keys that
// end up the same are an error, so no value silently replaces another.
func Rewrite(m map[string][]byte, rws []Rewriter) (map[string][]byte, error) {
	if len(rws) == 0 {
		return m, nil
	}
	out := make(map[string][]byte, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	from := map[string]string{}
	for _, k := range keys {
		nk := k
		for _, rw := range rws {
			var err error
			if nk, err = rw(nk); err != nil {
				return nil, err
			}
		}
		if prev, dup := from[nk]; dup {
			return nil, fmt.Errorf("rewrite maps both %q and %q to key %q", prev, k, nk)
		}
		from[nk] = k
		out[nk] = m[k]
	}
	return out, nil
}

// JSONStrings encodes a map of fields as a JSON object of strings; providers
// use it to fill provider.Value.Data for structured values.
func JSONStrings(fields map[string][]byte) []byte {
	m := make(map[string]string, len(fields))
	for k, v := range fields {
		m[k] = string(v)
	}
	b, _ := json.Marshal(m)
	return b
}
