package webhook

import (
	"testing"

	"github.com/tidwall/gjson"
)

const jsonDoc = `{
  "data": {"value": "s3cret", "tls.crt": "CERT", "nested": {"deep": {"x": 42}}},
  "count": 3,
  "ratio": 1.5,
  "big": 12345678901234567890,
  "enabled": true,
  "disabled": false,
  "nothing": null,
  "empty": [],
  "list": ["first", "second", "third"],
  "matrix": [[1, 2], [3, 4]],
  "items": [
    {"name": "db", "value": "dbpass", "port": 5432, "meta": {"env": "prod"}},
    {"name": "api", "value": "apikey", "port": 443, "meta": {"env": "dev"}, "rotated": true}
  ],
  "obj": {"b": 1, "a": "two"}
}`

func TestJSONPathSelects(t *testing.T) {
	tests := []struct {
		name, path, want string
	}{
		{"root member", "$.count", "3"},
		{"nested member", "$.data.value", "s3cret"},
		{"deeply nested", "$.data.nested.deep.x", "42"},
		{"without $", "data.value", "s3cret"},
		{"leading dot without $", ".data.value", "s3cret"},
		{"bracket quoted name holding a dot", "$.data['tls.crt']", "CERT"},
		{"double-quoted bracket", `$["data"]["value"]`, "s3cret"},
		{"array index", "$.list[1]", "second"},
		{"negative index counts from the end", "$.list[-1]", "third"},
		{"index then member", "$.items[1].value", "apikey"},
		{"array gives its first element (ESO)", "$.list", "first"},
		{"nested arrays give the first leaf (ESO)", "$.matrix", "1"},
		{"wildcard takes the first match", "$.items[*].name", "db"},
		{"dot wildcard", "$.items.*.value", "dbpass"},
		{"filter on a string", "$.items[?(@.name == 'api')].value", "apikey"},
		{"filter with double quotes, no spaces", `$.items[?(@.name=="db")].port`, "5432"},
		{"filter not-equal", "$.items[?(@.name != 'db')].name", "api"},
		{"filter on a number", "$.items[?(@.port < 1000)].name", "api"},
		{"filter on a nested member", "$.items[?(@.meta.env == 'prod')].value", "dbpass"},
		{"filter on existence", "$.items[?(@.rotated)].name", "api"},
		{"filter on a boolean", "$.items[?(@.rotated == true)].value", "apikey"},
		{"recursive descent", "$..deep.x", "42"},
		{"recursive descent for a name", "$..env", "prod"},
		{"number keeps its JSON text", "$.ratio", "1.5"},
		{"large number keeps its digits", "$.big", "12345678901234567890"},
		{"true", "$.enabled", "true"},
		{"false", "$.disabled", "false"},
		{"null is empty", "$.nothing", ""},
		{"object is its JSON", "$.obj", `{"b": 1, "a": "two"}`},
		{"trailing dot from an empty template value", "$.data.", `{"value": "s3cret", "tls.crt": "CERT", "nested": {"deep": {"x": 42}}}`},
	}
	doc := gjson.Parse(jsonDoc)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jp, err := parseJSONPath(tt.path)
			if err != nil {
				t.Fatalf("parsing %q: %v", tt.path, err)
			}
			got, ok := selectValue(jp.eval(doc))
			if !ok {
				t.Fatalf("%q selected nothing", tt.path)
			}
			if string(got) != tt.want {
				t.Fatalf("%q selected %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestJSONPathSelectsNothing(t *testing.T) {
	tests := []struct {
		name, path string
	}{
		{"missing member", "$.data.missing"},
		{"member of a string", "$.data.value.x"},
		{"index out of range", "$.list[7]"},
		{"negative index out of range", "$.list[-4]"},
		{"index into an object", "$.data[0]"},
		{"filter matching nothing", "$.items[?(@.name == 'nope')].value"},
		{"type mismatch never equals", "$.items[?(@.port == '443')].name"},
		{"empty array", "$.empty"},
		{"recursive descent finding nothing", "$..nope"},
	}
	doc := gjson.Parse(jsonDoc)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jp, err := parseJSONPath(tt.path)
			if err != nil {
				t.Fatalf("parsing %q: %v", tt.path, err)
			}
			if got, ok := selectValue(jp.eval(doc)); ok {
				t.Fatalf("%q selected %q, want nothing", tt.path, got)
			}
		})
	}
}

func TestJSONPathRefusesWhatItDoesNotSupport(t *testing.T) {
	tests := []struct {
		name, path string
	}{
		{"empty", ""},
		{"only spaces", "   "},
		{"union", "$.list[0,1]"},
		{"slice", "$.list[0:2]"},
		{"script", "$.list[(@.length-1)]"},
		{"unterminated string", "$['abc"},
		{"unclosed bracket", "$.list[0"},
		{"nested filter", "$.a[?(@.b[?(@.c)])]"},
		{"two comparisons", "$.a[?(@.b == 1 && @.c == 2)]"},
		{"filter without @", "$.a[?(b == 1)]"},
		{"bad literal", "$.a[?(@.b == bare)]"},
		{"ordering with a boolean", "$.a[?(@.b < true)]"},
		{"dot without a name", "$.a..."},
		{"stray character", "$.a)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseJSONPath(tt.path); err == nil {
				t.Fatalf("%q parsed, want an error", tt.path)
			}
		})
	}
}

func FuzzParseJSONPath(f *testing.F) {
	for _, s := range []string{"$.a.b", "$['a.b'][0]", "$..x", "$.a[?(@.b == 'c')].d", "$.a[-1]", "a.b", "$.a[*]"} {
		f.Add(s)
	}
	doc := gjson.Parse(jsonDoc)
	f.Fuzz(func(t *testing.T, path string) {
		jp, err := parseJSONPath(path)
		if err != nil {
			return
		}
		selectValue(jp.eval(doc))
	})
}
