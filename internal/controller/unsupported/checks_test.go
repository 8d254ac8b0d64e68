package unsupported

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func object(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestGeneratorOfAnotherClass(t *testing.T) {
	tests := []struct {
		name, class, doc string
		another          bool
	}{
		{"a generator without a class is everyone's", "", "kind: Password\nspec: {length: 24}", false},
		{"a generator without a class is ours under a class too", "keyferry", "kind: Password\nspec: {length: 24}", false},
		{"a Fake of our class", "keyferry", "kind: Fake\nspec: {controller: keyferry}", false},
		{"a Fake of another class", "keyferry", "kind: Fake\nspec: {controller: eso}", true},
		{"a Fake with a class when keyferry has none", "", "kind: Fake\nspec: {controller: eso}", true},
		{"a ClusterGenerator whose generator is of another class", "", "kind: ClusterGenerator\nspec: {kind: Fake, generator: {fakeSpec: {controller: eso}}}", true},
		{"a ClusterGenerator whose generator has no class", "", "kind: ClusterGenerator\nspec: {kind: Fake, generator: {fakeSpec: {data: {a: b}}}}", false},
		{"a ClusterGenerator with a non-object generator", "", "kind: ClusterGenerator\nspec: {kind: Fake, generator: {fakeSpec: 3}}", false},
		{"no spec", "x", "kind: UUID", false},
		{"a non-string controller is not a class", "x", "kind: Fake\nspec: {controller: 3}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := generatorOfAnotherClass(object(t, tt.doc), tt.class)
			if (why != "") != tt.another {
				t.Fatalf("generatorOfAnotherClass = %q; want another class: %t", why, tt.another)
			}
		})
	}
}

func TestPushSecretStores(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []storeRef
		resolved  bool
	}{
		{"stores by name, SecretStore by default", "kind: PushSecret\nspec: {secretStoreRefs: [{name: a}, {name: b, kind: ClusterSecretStore}]}",
			[]storeRef{{Kind: "SecretStore", Name: "a"}, {Kind: "ClusterSecretStore", Name: "b"}}, true},
		{"a label selector cannot be resolved", "kind: PushSecret\nspec: {secretStoreRefs: [{name: a}, {labelSelector: {matchLabels: {x: y}}}]}", nil, false},
		{"a ref without a name cannot be resolved", "kind: PushSecret\nspec: {secretStoreRefs: [{kind: SecretStore}]}", nil, false},
		{"no stores", "kind: PushSecret\nspec: {}", nil, false},
		{"a malformed ref", "kind: PushSecret\nspec: {secretStoreRefs: [3]}", nil, false},
		{"a ClusterPushSecret's ClusterSecretStores", "kind: ClusterPushSecret\nspec: {pushSecretSpec: {secretStoreRefs: [{name: c, kind: ClusterSecretStore}]}}",
			[]storeRef{{Kind: "ClusterSecretStore", Name: "c"}}, true},
		{"a ClusterPushSecret's SecretStore lives in every namespace", "kind: ClusterPushSecret\nspec: {pushSecretSpec: {secretStoreRefs: [{name: c}]}}", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := pushSecretStores(object(t, tt.doc))
			if ok != tt.resolved || len(got) != len(tt.want) {
				t.Fatalf("pushSecretStores = %v, %t; want %v, %t", got, ok, tt.want, tt.resolved)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("ref %d = %+v; want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestStoresOfAnotherClass(t *testing.T) {
	other := storeRef{Kind: "SecretStore", Name: "eso", Class: "eso", Found: true}
	ours := storeRef{Kind: "SecretStore", Name: "kf", Class: "keyferry", Found: true}
	unclassed := storeRef{Kind: "SecretStore", Name: "any", Found: true}
	missing := storeRef{Kind: "SecretStore", Name: "gone"}
	tests := []struct {
		name    string
		refs    []storeRef
		class   string
		another bool
	}{
		{"every store of another class", []storeRef{other, other}, "keyferry", true},
		{"one store of ours", []storeRef{other, ours}, "keyferry", false},
		{"a store without a class is everyone's", []storeRef{other, unclassed}, "keyferry", false},
		{"a missing store may be ours", []storeRef{other, missing}, "keyferry", false},
		{"no stores", nil, "keyferry", false},
		{"a classed store when keyferry has no class", []storeRef{ours}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := storesOfAnotherClass(tt.refs, tt.class)
			if (why != "") != tt.another {
				t.Fatalf("storesOfAnotherClass = %q; want another class: %t", why, tt.another)
			}
		})
	}
}

func TestSetUnsupported(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const msg = "keyferry does not implement X"
	tests := []struct {
		name, doc string
		changed   bool
		// ltt is the Ready condition's lastTransitionTime afterwards.
		ltt string
		// others is how many conditions besides Ready remain.
		others int
	}{
		{"no status", "kind: Password", true, "2026-01-02T03:04:05Z", 0},
		{"already unsupported: nothing to write", `kind: Password
status: {conditions: [{type: Ready, status: "False", reason: Unsupported, message: "keyferry does not implement X", lastTransitionTime: "2020-01-01T00:00:00Z"}]}`, false, "2020-01-01T00:00:00Z", 0},
		{"same status, other message: the transition time stays", `kind: Password
status: {conditions: [{type: Ready, status: "False", reason: Old, message: old, lastTransitionTime: "2020-01-01T00:00:00Z"}]}`, true, "2020-01-01T00:00:00Z", 0},
		{"status changes: a new transition time", `kind: Password
status: {conditions: [{type: Ready, status: "True", reason: Old, lastTransitionTime: "2020-01-01T00:00:00Z"}]}`, true, "2026-01-02T03:04:05Z", 0},
		{"other conditions are kept", `kind: PushSecret
status: {refreshTime: null, conditions: [{type: Synced, status: "True"}]}`, true, "2026-01-02T03:04:05Z", 1},
		{"a status that is not an object is replaced", "kind: Password\nstatus: 3", true, "2026-01-02T03:04:05Z", 0},
		{"conditions that are not a list are replaced", "kind: Password\nstatus: {conditions: x}", true, "2026-01-02T03:04:05Z", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := object(t, tt.doc)
			if got := setUnsupported(obj, msg, now); got != tt.changed {
				t.Fatalf("setUnsupported = %t; want %t", got, tt.changed)
			}
			conds, _, err := unstructured.NestedSlice(obj.Object, "status", "conditions")
			if err != nil {
				t.Fatal(err)
			}
			var ready map[string]any
			others := 0
			for _, c := range conds {
				m := c.(map[string]any)
				if m["type"] == ConditionReady {
					ready = m
					continue
				}
				others++
			}
			if ready == nil || ready["status"] != "False" || ready["reason"] != ReasonUnsupported || ready["message"] != msg {
				t.Fatalf("Ready = %v", ready)
			}
			if ready["lastTransitionTime"] != tt.ltt {
				t.Errorf("lastTransitionTime = %v; want %s", ready["lastTransitionTime"], tt.ltt)
			}
			if others != tt.others {
				t.Errorf("%d other conditions; want %d", others, tt.others)
			}
		})
	}
}

func TestKindsAreDistinctAndMessagesPointAtTheDocs(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds() {
		if seen[k.GroupVersionKind.String()] {
			t.Errorf("%s listed twice", k.GroupVersionKind)
		}
		seen[k.GroupVersionKind.String()] = true
		msg := Message(k)
		if !strings.Contains(msg, k.Kind+" (") || !strings.Contains(msg, "docs/status.md") {
			t.Errorf("Message(%s) = %q; want the kind and docs/status.md", k.Kind, msg)
		}
		if k.Kind == "GeneratorState" {
			t.Error("GeneratorState is written by an operator and must not be reported")
		}
	}
}
