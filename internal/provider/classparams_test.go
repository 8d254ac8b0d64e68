package provider

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// testParam is a parameter whose parser decodes a YAML list of mappings.
var testParam = ClassParam{Name: "parameters.objects", MaxLen: 64, IfEmpty: "parameters.objects is required"}

func parseList(s string) ([]map[string]string, error) {
	var out []map[string]string
	if err := yaml.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("parameters.objects is not a YAML list (%s)", YAMLErrorLine(err))
	}
	return out, nil
}

func TestParseClassParam(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		parse   func(string) ([]map[string]string, error)
		want    int
		wantErr string
	}{
		{name: "list", in: "- a: b\n- c: d\n", parse: parseList, want: 2},
		{name: "empty", in: "", parse: parseList, wantErr: "parameters.objects is required"},
		{name: "blank", in: " \n\t", parse: parseList, wantErr: "parameters.objects is required"},
		{name: "too long", in: "- a: " + strings.Repeat("b", 64), parse: parseList, wantErr: "parameters.objects is larger than 64 bytes"},
		{name: "bad YAML names the line only", in: "- a: b\n- c: d: s3cr3t", parse: parseList, wantErr: "parameters.objects is not a YAML list (line 2)"},
		{
			name:    "panic becomes an error",
			in:      "- a: b",
			parse:   func(string) ([]map[string]string, error) { panic("boom") },
			wantErr: "parameters.objects is not valid YAML",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClassParam(testParam, tt.in, tt.parse)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if got != nil {
					t.Fatalf("got %v with an error", got)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("got %v, %v; want %d entries", got, err, tt.want)
			}
		})
	}
}

func FuzzParseClassParam(f *testing.F) {
	for _, s := range []string{"", "- a: b", "- [x", "*a", "- &a [*a]", "a: b\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseClassParam(ClassParam{Name: "objects", MaxLen: 1 << 10, IfEmpty: "objects is empty"}, s, parseList)
		if err != nil && got != nil {
			t.Fatalf("got %v with error %v", got, err)
		}
		if err != nil && len(s) >= 8 && strings.Contains(err.Error(), s) {
			t.Fatalf("error %q quotes the input", err)
		}
	})
}

func TestYAMLErrorLine(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "position kept", err: errors.New("yaml: line 12: mapping values are not allowed: s3cr3t"), want: "line 12"},
		{name: "first position", err: errors.New("yaml: line 3: did not find expected key at line 4"), want: "line 3"},
		{name: "no number", err: errors.New("yaml: line : s3cr3t"), want: "line "},
		{name: "no position", err: errors.New("yaml: unmarshal errors: s3cr3t"), want: "syntax error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := YAMLErrorLine(tt.err); got != tt.want {
				t.Fatalf("YAMLErrorLine = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzYAMLErrorLine(f *testing.F) {
	for _, s := range []string{"", "- [x", "a: b: c", "\t- a", "*x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		err := yaml.Unmarshal([]byte(s), &v)
		if err == nil {
			return
		}
		got := YAMLErrorLine(err)
		if got != "syntax error" && !strings.HasPrefix(got, "line ") {
			t.Fatalf("YAMLErrorLine(%q) = %q", err, got)
		}
		if strings.Trim(got[min(len(got), len("line ")):], "0123456789") != "" && got != "syntax error" {
			t.Fatalf("YAMLErrorLine(%q) = %q keeps more than the position", err, got)
		}
	})
}

func TestResolveYAMLAlias(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("a: &x v\nb: *x\n"), &doc); err != nil {
		t.Fatal(err)
	}
	m := doc.Content[0]
	if got := ResolveYAMLAlias(m.Content[3]); got.Value != "v" || got.Kind != yaml.ScalarNode {
		t.Fatalf("alias resolved to %+v, want the scalar v", got)
	}
	if got := ResolveYAMLAlias(m.Content[1]); got != m.Content[1] {
		t.Fatalf("a node that is not an alias changed")
	}
	if got := ResolveYAMLAlias(nil); got == nil || got.Kind != 0 {
		t.Fatalf("nil resolved to %+v, want an empty node", got)
	}
	loop := &yaml.Node{Kind: yaml.AliasNode}
	loop.Alias = loop
	if got := ResolveYAMLAlias(loop); got == nil || got.Kind != 0 {
		t.Fatalf("a loop of aliases resolved to %+v, want an empty node", got)
	}
}

func TestValidClassFilePath(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"tls.crt", true},
		{"dir/file", true},
		{"a.b/c..d", true},
		{strings.Repeat("a", 4096), true},
		{"", false},
		{"/etc/passwd", false},
		{"../x", false},
		{"a/../b", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{`a\b`, false},
		{"a\x00b", false},
		{strings.Repeat("a", 4097), false},
	}
	for _, tt := range tests {
		if got := ValidClassFilePath(tt.in); got != tt.want {
			t.Errorf("ValidClassFilePath(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzValidClassFilePath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "/a", "a//b", "a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !ValidClassFilePath(p) {
			return
		}
		if strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\\\x00") || len(p) > 4096 {
			t.Fatalf("%q accepted", p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("%q accepted with segment %q", p, seg)
			}
		}
	})
}
