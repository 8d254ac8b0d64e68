package values

import (
	"errors"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestProperty(t *testing.T) {
	doc := provider.Value{Data: []byte(`{"user":"alice","n":3,"nested":{"a.b":"dotted","list":["x","y"]}}`)}
	fields := provider.Value{Data: []byte(`{"bin":"\u0000"}`), Fields: map[string][]byte{"bin": {0, 1, 2}}}
	tests := []struct {
		name     string
		v        provider.Value
		property string
		want     string
		err      error
	}{
		{"whole value without property", doc, "", string(doc.Data), nil},
		{"string field is unquoted", doc, "user", "alice", nil},
		{"number field keeps its JSON text", doc, "n", "3", nil},
		{"nested object path", doc, "nested.list.1", "y", nil},
		{"escaped dot in key", doc, `nested.a\.b`, "dotted", nil},
		{"object result is JSON", doc, "nested.list", `["x","y"]`, nil},
		{"missing property", doc, "nope", "", ErrPropertyNotFound},
		{"structured fields are binary-safe", fields, "bin", "\x00\x01\x02", nil},
		{"property of non-JSON", provider.Value{Data: []byte("plain")}, "x", "", ErrNotJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Property(tt.v, tt.property)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestExtract(t *testing.T) {
	v := provider.Value{Data: []byte(`{"a":"1","b":{"c":2},"n":null,"inner":{"x":"y"}}`)}
	got, err := Extract(v, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "1", "b": `{"c":2}`, "n": "", "inner": `{"x":"y"}`}
	for k, w := range want {
		if string(got[k]) != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	inner, err := Extract(v, "inner")
	if err != nil || string(inner["x"]) != "y" || len(inner) != 1 {
		t.Fatalf("extract with property: %v %v", inner, err)
	}
	if _, err := Extract(provider.Value{Data: []byte(`["array"]`)}, ""); !errors.Is(err, ErrNotJSON) {
		t.Fatalf("extract of an array: err = %v", err)
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		in       string
		strategy esv1.ExternalSecretDecodingStrategy
		want     string
		wantErr  bool
	}{
		{"aGVsbG8=", esv1.DecodingStrategyNone, "aGVsbG8=", false},
		{"aGVsbG8=", esv1.DecodingStrategyBase64, "hello", false},
		{"aGVsbG8", esv1.DecodingStrategyAuto, "hello", false},
		{"not base64!", esv1.DecodingStrategyAuto, "not base64!", false},
		{"not base64!", esv1.DecodingStrategyBase64, "", true},
		{"_-8=", esv1.DecodingStrategyBase64URL, "\xff\xef", false},
	}
	for _, tt := range tests {
		got, err := Decode([]byte(tt.in), tt.strategy)
		if (err != nil) != tt.wantErr || (!tt.wantErr && string(got) != tt.want) {
			t.Errorf("Decode(%q, %s) = %q, %v", tt.in, tt.strategy, got, err)
		}
		if err != nil && strings.Contains(err.Error(), tt.in) {
			t.Errorf("error quotes the value: %v", err)
		}
	}
}

func contains(s, sub string) bool { return len(sub) > 0 && len(s) >= len(sub) && indexOf(s, sub) >= 0 }
func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestConvertKey(t *testing.T) {
	tests := []struct {
		in       string
		strategy esv1.ExternalSecretConversionStrategy
		want     string
	}{
		{"db/password", esv1.ConversionStrategyDefault, "db_password"},
		{"ok-key_1.x", esv1.ConversionStrategyDefault, "ok-key_1.x"},
		{"db/password", esv1.ConversionStrategyUnicode, "db_U002f_password"},
		{"é", esv1.ConversionStrategyUnicode, "_U00e9_"},
	}
	for _, tt := range tests {
		if got := ConvertKey(tt.in, tt.strategy); got != tt.want || !ValidKey(got) {
			t.Errorf("ConvertKey(%q, %s) = %q, want %q", tt.in, tt.strategy, got, tt.want)
		}
	}
}

func TestRewriteRefusesCollisions(t *testing.T) {
	rw, err := RegexpRewriter(`^app-(.*)$`, "$1")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Rewrite(map[string][]byte{"app-user": []byte("u"), "app-pass": []byte("p")}, []Rewriter{rw})
	if err != nil || string(out["user"]) != "u" || string(out["pass"]) != "p" {
		t.Fatalf("rewrite: %v %v", out, err)
	}
	if _, err := Rewrite(map[string][]byte{"app-user": nil, "user": nil}, []Rewriter{rw}); err == nil {
		t.Fatal("two keys rewritten to the same name: want an error")
	}
	if _, err := RegexpRewriter("(", "x"); err == nil {
		t.Fatal("bad regexp: want an error")
	}
}

func FuzzProperty(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,2]}}`), "a.b.0")
	f.Add([]byte(`plain`), "x")
	f.Add([]byte(`{"a":"b"}`), `a|@reverse`)
	f.Fuzz(func(t *testing.T, doc []byte, path string) {
		_, _ = Property(provider.Value{Data: doc}, path)
		_, _ = Extract(provider.Value{Data: doc}, path)
	})
}
