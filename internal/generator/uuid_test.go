package generator

import (
	"regexp"
	"testing"

	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
)

// v4 is a lower-case canonical version-4 UUID with the RFC 9562 variant.
var v4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestUUID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		out, err := UUID()
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != 1 {
			t.Fatalf("%d keys; want only %q", len(out), UUIDKey)
		}
		id := string(out[UUIDKey])
		if !v4.MatchString(id) {
			t.Fatalf("%q is not a version-4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("%q generated twice", id)
		}
		seen[id] = true
	}
}

func TestFake(t *testing.T) {
	tests := []struct {
		name string
		spec genv1alpha1.FakeSpec
		want map[string]string
	}{
		{"spec.data as it is", genv1alpha1.FakeSpec{Data: map[string]string{"username": "admin", "password": "p"}}, map[string]string{"username": "admin", "password": "p"}},
		{"controller is not output", genv1alpha1.FakeSpec{Controller: "dev", Data: map[string]string{"k": "v"}}, map[string]string{"k": "v"}},
		{"an empty value stays", genv1alpha1.FakeSpec{Data: map[string]string{"k": ""}}, map[string]string{"k": ""}},
		{"no data", genv1alpha1.FakeSpec{}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := Fake(tt.spec)
			if len(out) != len(tt.want) {
				t.Fatalf("Fake = %v; want %v", out, tt.want)
			}
			for k, v := range tt.want {
				got, ok := out[k]
				if !ok || string(got) != v {
					t.Errorf("%s = %q (present %t); want %q", k, got, ok, v)
				}
			}
		})
	}
	// The output is a copy: changing it leaves the spec alone.
	spec := genv1alpha1.FakeSpec{Data: map[string]string{"k": "v"}}
	out := Fake(spec)
	out["k"][0] = 'x'
	if spec.Data["k"] != "v" {
		t.Error("Fake's output aliases the spec")
	}
}
