package render

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	k := func(s string) PathStep { return PathStep{Key: s} }
	i := func(n int) PathStep { return PathStep{Index: n, IsIndex: true} }
	tests := []struct {
		path string
		want []PathStep // nil: refused
	}{
		{"spec", []PathStep{k("spec")}},
		{"spec.database", []PathStep{k("spec"), k("database")}},
		{"spec.headers.customRequestHeaders", []PathStep{k("spec"), k("headers"), k("customRequestHeaders")}},
		{"spec.rules[0].from[0].source.notRemoteIpBlocks", []PathStep{k("spec"), k("rules"), i(0), k("from"), i(0), k("source"), k("notRemoteIpBlocks")}},
		{"spec.matrix[1][2]", []PathStep{k("spec"), k("matrix"), i(1), i(2)}},
		{"spec.list.[3]", []PathStep{k("spec"), k("list"), i(3)}},
		{"spec.items[10000]", []PathStep{k("spec"), k("items"), i(MaxPathIndex)}},
		{"", nil},
		{".spec", nil},
		{"spec.", nil},
		{"spec..x", nil},
		{"[0].foo", nil},
		{"[0]", nil},
		{"spec[", nil},
		{"spec[x]", nil},
		{"spec[]", nil},
		{"spec[-1]", nil},
		{"spec[+1]", nil},
		{"spec[10001]", nil},
		{"spec[0]x", nil},
		{"spec]", nil},
		{"spec" + strings.Repeat(".a", maxPathSteps), nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			got, err := ParsePath(tt.path)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("accepted as %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPlace(t *testing.T) {
	doc := func(s string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name   string
		root   string
		path   string
		value  any
		merge  bool
		want   string // "": refused
		errHas string
	}{
		{name: "creates intermediate maps", root: `{}`, path: "spec.database", value: map[string]any{"host": "h"}, merge: true,
			want: `{"spec":{"database":{"host":"h"}}}`},
		{name: "merges into an existing map", root: `{"spec":{"database":{"host":"old","port":1}}}`, path: "spec.database", value: map[string]any{"host": "h"}, merge: true,
			want: `{"spec":{"database":{"host":"h","port":1}}}`},
		{name: "replaces without merge", root: `{"spec":{"database":{"host":"old","port":1}}}`, path: "spec.database", value: map[string]any{"host": "h"},
			want: `{"spec":{"database":{"host":"h"}}}`},
		{name: "a single key replaces", root: `{"spec":{"a":1}}`, path: "spec", value: map[string]any{"b": "x"}, merge: true,
			want: `{"spec":{"b":"x"}}`},
		{name: "a non-map value replaces a map", root: `{"spec":{"x":{"a":1}}}`, path: "spec.x", value: "s", merge: true,
			want: `{"spec":{"x":"s"}}`},
		{name: "creates arrays and keeps siblings", root: `{"spec":{"rules":[{"from":[{"source":{"principals":["p"]}}]}]}}`,
			path: "spec.rules[0].from[0].source.notRemoteIpBlocks", value: []any{"10.0.0.0/8"}, merge: true,
			want: `{"spec":{"rules":[{"from":[{"source":{"notRemoteIpBlocks":["10.0.0.0/8"],"principals":["p"]}}]}]}}`},
		{name: "grows an array with nulls", root: `{}`, path: "spec.items[2]", value: "c",
			want: `{"spec":{"items":[null,null,"c"]}}`},
		{name: "a map where an array is expected", root: `{"spec":{"items":{"a":1}}}`, path: "spec.items[0]", value: "c", errHas: "expects an array, found a map"},
		{name: "a string where a map is expected", root: `{"spec":"kfCANARYplace"}`, path: "spec.x", value: "c", errHas: "expects a map, found a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := ParsePath(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			root := doc(tt.root)
			err = Place(root, steps, tt.value, tt.merge)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v, want %q", err, tt.errHas)
				}
				if strings.Contains(err.Error(), "kfCANARY") {
					t.Fatalf("error quotes a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(root)
			if string(got) != tt.want {
				t.Fatalf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestParseValueKeepsIntegers(t *testing.T) {
	v, err := ParseValue([]byte("host: db\nport: 5432\nratio: 0.5\nbig: 9007199254740993\nlist: [a, 1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"host": "db", "port": int64(5432), "ratio": 0.5, "big": int64(9007199254740993), "list": []any{"a", int64(1)}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %#v", v)
	}
	if _, err := ParseValue([]byte("a: [kfCANARYvalue")); err == nil || strings.Contains(err.Error(), "kfCANARY") {
		t.Fatalf("bad YAML: err = %v", err)
	}
}

func TestRenderPathTargets(t *testing.T) {
	items := []Item{
		{Template: "host: {{ .h }}\nport: 5432\n", KeysAndValues: true, Target: "spec.database", Source: "literal0"},
		{Key: "url", Template: "{{ .h }}", Target: "spec", Source: "cm/url"},
		{Key: "ips", Template: "[10.0.0.0/8]", Target: "spec.rules[0].ips", Source: "cm/ips"},
		{Key: "k", Template: "{{ .h }}", Source: "data.k"},
	}
	out, err := Render(items, map[string][]byte{"h": []byte("db")})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Data["k"]) != "db" || len(out.Data) != 1 {
		t.Errorf("data = %v", out.Data)
	}
	want := []Field{
		{Steps: []PathStep{{Key: "spec"}, {Key: "database"}}, Value: map[string]any{"host": "db", "port": int64(5432)}, Merge: true},
		{Steps: []PathStep{{Key: "spec"}, {Key: "url"}}, Value: "db"},
		{Steps: []PathStep{{Key: "spec"}, {Key: "rules"}, {Index: 0, IsIndex: true}, {Key: "ips"}}, Value: []any{"10.0.0.0/8"}},
	}
	if !reflect.DeepEqual(out.Fields, want) {
		t.Fatalf("fields = %#v", out.Fields)
	}
	_, err = Render([]Item{{Template: "a: [{{ .h }}", KeysAndValues: true, Target: "spec.x", Source: "lit"}}, map[string][]byte{"h": []byte("kfCANARYrender")})
	if err == nil || strings.Contains(err.Error(), "kfCANARY") {
		t.Fatalf("bad document: err = %v", err)
	}
}

// FuzzParsePath: any path either is refused or parses into steps that
// start with a key, whose indexes are in range, and that Place accepts on
// an empty object.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"spec", "spec.database", "spec.rules[0].from[0].source.notRemoteIpBlocks", "[0].x", "a[1][2].b", "a[99999]", "a..b", "a[", "a]b", "a.[0]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		steps, err := ParsePath(path)
		if err != nil {
			return
		}
		if len(steps) == 0 || steps[0].IsIndex || len(steps) > maxPathSteps+10 {
			t.Fatalf("%q parsed into %v", path, steps)
		}
		for _, s := range steps {
			if s.IsIndex && (s.Index < 0 || s.Index > MaxPathIndex) {
				t.Fatalf("%q: index %d out of range", path, s.Index)
			}
			if !s.IsIndex && s.Key == "" {
				t.Fatalf("%q: empty key", path)
			}
		}
		root := map[string]any{}
		if err := Place(root, steps, "v", true); err != nil {
			t.Fatalf("%q: Place on an empty object: %v", path, err)
		}
	})
}
