package aws

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/tidwall/gjson"

	"github.com/keyferry/keyferry/internal/provider"
)

// AWS's validation messages may echo a field they refuse ("Value '…' at
// 'value' failed to satisfy constraint"): writeError keeps what the error
// means and drops such a message.
func TestWriteErrorNeverQuotesAValue(t *testing.T) {
	const value = "kf-write-canary-31"
	tests := []struct {
		name     string
		err      error
		want     error
		wantText string
	}{
		{"a message quoting the value is dropped, the code kept",
			&smithy.GenericAPIError{Code: "ValidationException", Message: "Value '" + value + "' at 'value' failed to satisfy constraint"},
			nil, "ValidationException"},
		{"the sentinel of a quoting error is kept",
			&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "denied writing " + value},
			provider.ErrForbidden, "AccessDeniedException"},
		{"throttling stays throttling",
			&smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down " + value},
			nil, "ThrottlingException"},
		{"a message without the value is kept as it is",
			&smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: "Secrets Manager can't find the specified secret."},
			provider.ErrNotFound, "can't find the specified secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := writeError("pushing to secret \"app\"", tt.err, []byte("other"), []byte(value))
			if strings.Contains(err.Error(), value) {
				t.Fatalf("the error quotes the value: %v", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) || !strings.Contains(err.Error(), `secret "app"`) {
				t.Fatalf("err = %v; want it to name the operation and %q", err, tt.wantText)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v; want %v", err, tt.want)
			}
		})
	}
	var throttled *provider.ThrottledError
	if err := writeError("op", &smithy.GenericAPIError{Code: "ThrottlingException", Message: value}, []byte(value)); !errors.As(err, &throttled) {
		t.Fatalf("err = %v; want a *provider.ThrottledError", err)
	}
}

func TestPropertyPath(t *testing.T) {
	tests := []struct {
		property string
		want     []string // nil: refused with ErrInvalidPush
	}{
		{"password", []string{"password"}},
		{"tls-crt_2", []string{"tls-crt_2"}},
		{"with space", []string{"with space"}},
		{"db.password", []string{"db", "password"}},
		{"a.b.c", []string{"a", "b", "c"}},
		{`tls\.crt`, []string{"tls.crt"}},
		{`a\*b`, []string{"a*b"}},
		{`a\\b`, []string{`a\b`}},
		{"a.0", []string{"a", "0"}},
		{"a*", nil},
		{"a?", nil},
		{"a|b", nil},
		{"#", nil},
		{"friends.#.first", nil},
		{"@this", nil},
		{"!true", nil},
		{`trailing\`, nil},
		{"a..b", nil},
		{".a", nil},
		{"a.", nil},
		{"\x83", nil},
		// A key gjson reads as a multipath query, escaped or not.
		{"[0", nil},
		{"{a", nil},
		{"a.[0", nil},
		{`\[0`, nil},
		{"[", []string{"["}},
		{"a[0", []string{"a[0"}},
	}
	for _, tt := range tests {
		got, err := propertyPath(provider.PushRef{RemoteKey: "k", Property: tt.property})
		if tt.want == nil {
			if !errors.Is(err, provider.ErrInvalidPush) {
				t.Errorf("propertyPath(%q) = %q, %v; want ErrInvalidPush", tt.property, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("propertyPath(%q) = %q, %v; want %q", tt.property, got, err, tt.want)
		}
	}
}

// FuzzPropertyValue pushes a value into a property of any remote value and
// deletes it again: the push either refuses with ErrInvalidPush, quoting
// no value, or yields a JSON object from which gjson (the read side) reads
// the value back at the property, every other key of the remote kept;
// deleting the property removes it and keeps the other keys.
func FuzzPropertyValue(f *testing.F) {
	f.Add([]byte(`{"user":"admin","port":5432}`), "password", "s3cret")
	f.Add([]byte(``), "a", "x")
	f.Add([]byte(`{"a":{"nested":[1,2]},"b":null}`), "a", "")
	f.Add([]byte(`not json`), "p", "v")
	f.Add([]byte(`["a"]`), "p", "v")
	f.Add([]byte(`{"p":"old"}`), "p", "new\n\"quoted\" <&>")
	f.Add([]byte(`{}`), "a.b", "v")
	f.Add([]byte(`{"tls":{"key":"k"},"x":1}`), "tls.crt", "c")
	f.Add([]byte(`{"tls":"flat"}`), "tls.crt", "c")
	f.Add([]byte(`{"a.b":"literal"}`), `a\.b`, "v")
	f.Add([]byte(`{"x":1}`), "p", "\xff\xfe")
	f.Fuzz(func(t *testing.T, current []byte, property, raw string) {
		if property == "" {
			return
		}
		ref := provider.PushRef{RemoteKey: "app", Property: property}
		value := "kfv-" + raw
		if _, err := propertyPath(ref); err != nil {
			if !errors.Is(err, provider.ErrInvalidPush) {
				t.Fatalf("propertyPath: %v", err)
			}
			return
		}
		out, err := finalValue(ref, current, []byte(value))
		if err != nil {
			if !errors.Is(err, provider.ErrInvalidPush) {
				t.Fatalf("finalValue: %v; want ErrInvalidPush", err)
			}
			if !strings.Contains(property, "kfv-") && strings.Contains(err.Error(), value) {
				t.Fatalf("the error quotes the value: %v", err)
			}
			return
		}
		// What the push wrote is what an ExternalSecret reads back.
		if r := gjson.GetBytes(out, property); r.Type != gjson.String || r.Str != value {
			t.Fatalf("reading property %q back gives %v; want the value", property, r.Type)
		}
		if !hasProperty(out, property) {
			t.Fatal("hasProperty does not find the property just pushed")
		}
		// Every other top-level key is kept.
		path, _ := propertyPath(ref)
		var before, got map[string]any
		_ = json.Unmarshal(current, &before)
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("the result is not a JSON object: %v", err)
		}
		for k, v := range before {
			if k != path[0] && !reflect.DeepEqual(got[k], v) {
				t.Fatalf("key %q changed", k)
			}
		}
		rest, empty, err := withoutProperty(ref, out)
		if err != nil {
			t.Fatalf("withoutProperty: %v", err)
		}
		if empty {
			for k := range before {
				if k != path[0] {
					t.Fatalf("withoutProperty says nothing is left, but key %q was there", k)
				}
			}
			return
		}
		if gjson.GetBytes(rest, property).Exists() || hasProperty(rest, property) {
			t.Fatalf("property %q still there after withoutProperty", property)
		}
		var after map[string]any
		if err := json.Unmarshal(rest, &after); err != nil {
			t.Fatalf("withoutProperty's result is not a JSON object: %v", err)
		}
		for k, v := range before {
			if k != path[0] && !reflect.DeepEqual(after[k], v) {
				t.Fatalf("key %q changed by withoutProperty", k)
			}
		}
	})
}
