package aws

// This file is what the two services' write sides (PushSecret) share:
// the value a push writes, properties of a JSON object value, and errors
// that never carry a value. The services' Pushers are in
// push_secretsmanager.go and push_parameterstore.go.
//
// ESO's meaning is kept: a remote secret keyferry creates carries the tag
// managed-by: external-secrets, and one without it is never written or
// deleted; the whole Secret (no secretKey) is a JSON object; a property is
// one key of a JSON object value, its other keys kept.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/keyferry/keyferry/internal/provider"
)

// pushDescription is the description ESO gives what it creates without
// PushSecret metadata.
const pushDescription = "secret '" + provider.ManagedByKey + ":" + provider.ManagedByValue + "'"

// pathSpecials are the characters that, unescaped, make a property a gjson
// query rather than a path of keys (wildcards, array and query syntax,
// modifiers, pipes, literals).
const pathSpecials = "*?|#@!"

// propertyPath splits a property into the keys it names, as ESO (sjson)
// writes it and ExternalSecrets (gjson) read it back: a dot separates
// nested keys, a backslash makes the next character literal ("tls\.crt"
// is one key). A property that is a gjson query, not a path, is refused:
// a push could not write where the query reads.
func propertyPath(ref provider.PushRef) ([]string, error) {
	p := ref.Property
	if !utf8.ValidString(p) {
		return nil, fmt.Errorf("%w: property %q is not UTF-8 text, so it cannot be a key of a JSON object", provider.ErrInvalidPush, p)
	}
	var path []string
	var key strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\' && i+1 < len(p):
			i++
			key.WriteByte(p[i])
		case c == '.':
			path = append(path, key.String())
			key.Reset()
		case strings.IndexByte(pathSpecials, c) >= 0 || c == '\\':
			return nil, fmt.Errorf("%w: property %q is a gjson query (%q), not a path of keys; escape the character with a backslash to push a key holding it", provider.ErrInvalidPush, p, c)
		default:
			key.WriteByte(c)
		}
	}
	path = append(path, key.String())
	for _, k := range path {
		if k == "" {
			return nil, fmt.Errorf("%w: property %q names an empty key", provider.ErrInvalidPush, p)
		}
		if len(k) > 1 && (k[0] == '[' || k[0] == '{') {
			// gjson reads such a key as a multipath query, escaped or not:
			// what the push wrote could not be read back.
			return nil, fmt.Errorf("%w: property %q has a key starting with %q, which gjson reads as a query, so no ExternalSecret could read it back", provider.ErrInvalidPush, p, k[0])
		}
	}
	return path, nil
}

// checkProperty refuses a property a push cannot write (see propertyPath).
func checkProperty(ref provider.PushRef) error {
	if ref.Property == "" {
		return nil
	}
	_, err := propertyPath(ref)
	return err
}

// pushedBytes is the value a push writes before any property applies: the
// key's bytes, or the whole Secret as a JSON object. base64Whole says how
// the whole Secret's values are encoded, as ESO does per service: Secrets
// Manager writes them as strings, Parameter Store (without ESO's
// encodeAsDecoded metadata) as base64.
func pushedBytes(v provider.PushValue, base64Whole bool) ([]byte, error) {
	if !v.Whole() {
		return v.Value, nil
	}
	m := make(map[string]string, len(v.Secret))
	for k, b := range v.Secret {
		switch {
		case base64Whole:
			m[k] = base64.StdEncoding.EncodeToString(b)
		case !utf8.Valid(b):
			return nil, fmt.Errorf("%w: key %q of the source Secret is not UTF-8 text, so the whole Secret cannot be pushed as a JSON object of strings; push its keys one by one", provider.ErrInvalidPush, k)
		default:
			m[k] = string(b)
		}
	}
	out, err := marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: the source Secret cannot be encoded as JSON", provider.ErrInvalidPush)
	}
	return out, nil
}

// marshal encodes v as ESO does: JSON without HTML escaping, no newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// object decodes a JSON object, keeping its values as they are (numbers,
// nested objects); an empty or null value is an empty object. ok is false
// when raw is something else. The decoder's error is not kept: it may
// quote the value.
func object(raw []byte) (map[string]json.RawMessage, bool) {
	m := map[string]json.RawMessage{}
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return m, true
	}
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

// hasProperty says whether current is a JSON object holding the property.
func hasProperty(current []byte, property string) bool {
	path, err := propertyPath(provider.PushRef{Property: property})
	if err != nil {
		return false
	}
	raw := json.RawMessage(current)
	for _, k := range path {
		m, ok := object(raw)
		if !ok {
			return false
		}
		if raw, ok = m[k]; !ok {
			return false
		}
	}
	return true
}

// finalValue is what the remote holds after pushing value at ref over
// current: value itself without a property; with one, current's JSON
// object with the property set to value as a string (nested objects
// created along a dotted path, as ESO's sjson does), every other key kept.
func finalValue(ref provider.PushRef, current, value []byte) ([]byte, error) {
	if ref.Property == "" {
		return value, nil
	}
	path, err := propertyPath(ref)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(value) {
		return nil, fmt.Errorf("%w: the value for property %q is not UTF-8 text, and a property holds a JSON string; push it without a property", provider.ErrInvalidPush, ref.Property)
	}
	s, err := marshal(string(value))
	if err != nil {
		return nil, fmt.Errorf("%w: the value for property %q cannot be encoded as JSON", provider.ErrInvalidPush, ref.Property)
	}
	out, ok := setPath(current, path, s)
	if !ok {
		return nil, fmt.Errorf("%w: the value of %q is not a JSON object along property %q, so the property cannot be pushed into it", provider.ErrInvalidPush, ref.RemoteKey, ref.Property)
	}
	return out, nil
}

// setPath sets path in the JSON object raw to value; false when raw, or an
// object on the way, is not an object.
func setPath(raw []byte, path []string, value json.RawMessage) ([]byte, bool) {
	m, ok := object(raw)
	if !ok {
		return nil, false
	}
	if len(path) > 1 {
		if value, ok = setPath(m[path[0]], path[1:], value); !ok {
			return nil, false
		}
	}
	m[path[0]] = value
	out, err := marshal(m)
	return out, err == nil
}

// withoutProperty is current without ref's property (and without the
// objects on its path it leaves empty), and whether nothing is left.
func withoutProperty(ref provider.PushRef, current []byte) ([]byte, bool, error) {
	path, err := propertyPath(ref)
	if err != nil {
		return nil, false, err
	}
	out, empty, ok := deletePath(current, path)
	if !ok {
		return nil, false, fmt.Errorf("%w: the value of %q is not a JSON object along property %q", provider.ErrInvalidPush, ref.RemoteKey, ref.Property)
	}
	return out, empty, nil
}

// deletePath deletes path from the JSON object raw, dropping objects it
// leaves empty; empty says the result is an empty object.
func deletePath(raw []byte, path []string) (out []byte, empty, ok bool) {
	m, ok := object(raw)
	if !ok {
		return nil, false, false
	}
	child, found := m[path[0]]
	switch {
	case !found:
	case len(path) == 1:
		delete(m, path[0])
	default:
		rest, childEmpty, ok := deletePath(child, path[1:])
		if !ok {
			return nil, false, false
		}
		if childEmpty {
			delete(m, path[0])
		} else {
			m[path[0]] = rest
		}
	}
	if len(m) == 0 {
		return nil, true, true
	}
	out, err := marshal(m)
	return out, false, err == nil
}

// writeError classifies err, an AWS SDK error of a call that sent values,
// and makes sure its text quotes none of them: AWS's validation messages
// may echo a field they refuse. When one would show, the error keeps only
// what it means (its sentinel) and the operation.
func writeError(op string, err error, values ...[]byte) error {
	msg := err.Error()
	for _, v := range values {
		if len(v) == 0 || !strings.Contains(msg, string(v)) {
			continue
		}
		code, _ := errorCode(err)
		redacted := fmt.Errorf("AWS refused the call with %s; its message quotes the value and is not shown", codeOrUnknown(code))
		if kind := kindOf(err); kind != nil {
			return fmt.Errorf("%s: %w: %w", op, kind, redacted)
		}
		if isThrottled(err) {
			return fmt.Errorf("%s: %w", op, &provider.ThrottledError{Err: redacted})
		}
		return fmt.Errorf("%s: %w", op, redacted)
	}
	return fmt.Errorf("%s: %w", op, classify(err))
}

func codeOrUnknown(code string) string {
	if code == "" {
		return "an error"
	}
	return code
}

// hasCode says whether err is an AWS error with one of codes.
func hasCode(err error, codes ...string) bool {
	code, _ := errorCode(err)
	for _, c := range codes {
		if code == c {
			return true
		}
	}
	return false
}

// conflict is the error of a check-and-set that failed: the remote secret
// is not in the state the push was decided on.
func conflict(op, why string) error {
	return fmt.Errorf("%s: %w (%s)", op, provider.ErrConflict, why)
}
