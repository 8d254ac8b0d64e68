package values

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

func TestMerge(t *testing.T) {
	creds := map[string][]byte{
		"path/to/secrets/object-storage-credentials": []byte(`{"ACCESS_KEY":"XXXX","SECRET_KEY":"YYYY"}`),
		"path/to/secrets/mongo-credentials":          []byte(`{"USERNAME":"XXXX","PASSWORD":"YYYY"}`),
	}
	overlap := map[string][]byte{
		"a":    []byte(`{"user":"from-a","port":5432,"tls":true,"extra":{"x":1},"none":null}`),
		"b":    []byte(`{"user":"from-b"}`),
		"prio": []byte(`{"user":"from-prio"}`),
	}
	tests := []struct {
		name string
		in   map[string][]byte
		opts MergeOptions
		want map[string]string
		err  string
	}{
		{
			name: "ESO's example: every field at the top level",
			in:   creds, opts: MergeOptions{},
			want: map[string]string{"ACCESS_KEY": "XXXX", "SECRET_KEY": "YYYY", "USERNAME": "XXXX", "PASSWORD": "YYYY"},
		},
		{
			name: "a field in two values is a conflict by default, named",
			in:   overlap, opts: MergeOptions{},
			err: `more than one value has the field "user"`,
		},
		{
			name: "conflictPolicy Ignore: alphabetical order, the last wins; non-strings as JSON, null empty",
			in:   overlap, opts: MergeOptions{ConflictPolicy: MergeConflictIgnore},
			want: map[string]string{"user": "from-prio", "port": "5432", "tls": "true", "extra": `{"x":1}`, "none": ""},
		},
		{
			name: "priority keys merge last, in their order",
			in:   overlap, opts: MergeOptions{ConflictPolicy: MergeConflictIgnore, Priority: []string{"prio", "a"}},
			want: map[string]string{"user": "from-a", "port": "5432", "tls": "true", "extra": `{"x":1}`, "none": ""},
		},
		{
			name: "a priority key not in the map fails (Strict)",
			in:   creds, opts: MergeOptions{Priority: []string{"missing"}},
			err: `priority key "missing" is not among the keys`,
		},
		{
			name: "IgnoreNotFound skips it",
			in:   map[string][]byte{"k": []byte(`{"f":"v"}`)}, opts: MergeOptions{Priority: []string{"missing"}, PriorityPolicy: MergePriorityIgnoreNotFound},
			want: map[string]string{"f": "v"},
		},
		{
			name: "JSON: the keys stay, the merged object goes under into",
			in:   map[string][]byte{"x": []byte(`{"b":"<2>","a":1}`), "y": []byte(`{"c":[1,2]}`)}, opts: MergeOptions{Strategy: MergeStrategyJSON, Into: "all"},
			want: map[string]string{"x": `{"b":"<2>","a":1}`, "y": `{"c":[1,2]}`, "all": `{"a":1,"b":"<2>","c":[1,2]}`},
		},
		{
			name: "JSON into an existing key replaces it",
			in:   map[string][]byte{"all": []byte(`{"a":"1"}`)}, opts: MergeOptions{Strategy: MergeStrategyJSON, Into: "all"},
			want: map[string]string{"all": `{"a":"1"}`},
		},
		{
			name: "JSON without into",
			in:   creds, opts: MergeOptions{Strategy: MergeStrategyJSON},
			err: "strategy JSON needs into",
		},
		{
			name: "a value that is not an object is named by its key, not shown",
			in:   map[string][]byte{"plain": []byte("s3cr3t-canary")}, opts: MergeOptions{},
			err: `the value of key "plain" is not a JSON object`,
		},
		{
			name: "an array is not an object",
			in:   map[string][]byte{"list": []byte(`["s3cr3t-canary"]`)}, opts: MergeOptions{},
			err: `the value of key "list" is not a JSON object`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := maps.Clone(tt.in)
			got, err := Merge(tt.in, tt.opts)
			if !maps.EqualFunc(in, tt.in, func(a, b []byte) bool { return string(a) == string(b) }) {
				t.Fatal("Merge changed its input")
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if strings.Contains(err.Error(), "canary") {
					t.Fatalf("the error shows a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got keys %v, want %v", keys(got), tt.want)
			}
			for k, v := range tt.want {
				if string(got[k]) != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzMerge: any input either merges or fails naming keys only; the JSON
// strategy always yields a valid JSON object under into.
func FuzzMerge(f *testing.F) {
	f.Add(`{"a":"1"}`, `{"b":2}`, "JSON", "Ignore")
	f.Add(`{"a":"1"}`, `{"a":"2"}`, "Extract", "Error")
	f.Add(`not json`, `{}`, "Extract", "Ignore")
	f.Add(`{"a":{"b":[1,null,"\u003c"]}}`, `{"c":1e400}`, "JSON", "Ignore")
	f.Fuzz(func(t *testing.T, v1, v2, strategy, conflict string) {
		in := map[string][]byte{"k1": []byte(v1), "k2": []byte(v2)}
		out, err := Merge(in, MergeOptions{Strategy: strategy, Into: "into", ConflictPolicy: conflict})
		if err != nil {
			if (len(v1) > 8 && strings.Contains(err.Error(), v1)) || (len(v2) > 8 && strings.Contains(err.Error(), v2)) {
				t.Fatalf("the error shows a value: %v", err)
			}
			return
		}
		if strategy == MergeStrategyJSON && !json.Valid(out["into"]) {
			t.Fatalf("into is not valid JSON: %q", out["into"])
		}
	})
}
