package clusterpushsecret

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
)

// cpsFromYAML decodes a ClusterPushSecret the way the API server's JSON
// reaches the controller.
func cpsFromYAML(t testing.TB, doc string) *esv1alpha1.ClusterPushSecret {
	t.Helper()
	var cps esv1alpha1.ClusterPushSecret
	if err := yaml.Unmarshal([]byte(doc), &cps); err != nil {
		t.Fatalf("decoding %q: %v", doc, err)
	}
	return &cps
}

func TestCheckSpec(t *testing.T) {
	tests := []struct {
		name, doc string
		// reason is the refusal's reason; "" means the spec passes.
		reason string
		// mentions must appear in the message.
		mentions []string
	}{
		{"a matchLabels selector", "metadata: {name: c}\nspec: {namespaceSelectors: [{matchLabels: {cool: label}}]}", "", nil},
		{"an empty selector selects every namespace, explicitly", "spec: {namespaceSelectors: [{}]}", "", nil},
		{"one null entry among valid ones", "spec: {namespaceSelectors: [null, {matchLabels: {a: b}}]}", "", nil},
		{"a valid refreshTime", "spec: {refreshTime: 1m, namespaceSelectors: [{}]}", "", nil},
		{"no namespaceSelectors", "spec: {pushSecretSpec: {}}", ReasonNoNamespaceSelector, []string{"spec.namespaceSelectors", "GHSA-fcxq-v2r3-cc8h", "{}"}},
		{"an empty namespaceSelectors list", "spec: {namespaceSelectors: []}", ReasonNoNamespaceSelector, nil},
		{"only null entries", "spec: {namespaceSelectors: [null]}", ReasonNoNamespaceSelector, nil},
		{"an unknown operator", "spec: {namespaceSelectors: [{matchExpressions: [{key: a, operator: Sometimes, values: [b]}]}]}", ReasonInvalidSpec, []string{"spec.namespaceSelectors[0]"}},
		{"an invalid label value", "spec: {namespaceSelectors: [{}, {matchLabels: {a: 'not valid!'}}]}", ReasonInvalidSpec, []string{"spec.namespaceSelectors[1]"}},
		{"a refreshTime that is not a duration", "spec: {refreshTime: 1d, namespaceSelectors: [{}]}", ReasonInvalidSpec, []string{"spec.refreshTime", `"1d"`}},
		{"an invalid selector wins over a missing one", "spec: {refreshTime: 1d}", ReasonInvalidSpec, []string{"spec.refreshTime"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckSpec(cpsFromYAML(t, tt.doc))
			if tt.reason == "" {
				if got != nil {
					t.Fatalf("CheckSpec = %+v; want it to pass", got)
				}
				return
			}
			if got == nil || got.Reason != tt.reason {
				t.Fatalf("CheckSpec = %+v; want reason %s", got, tt.reason)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(got.Message, m) {
					t.Errorf("message %q does not mention %q", got.Message, m)
				}
			}
		})
	}
}

func TestClusterStoresNamed(t *testing.T) {
	tests := []struct {
		name, doc string
		want      []string
		resolved  bool
	}{
		{"ClusterSecretStores by name", "spec: {pushSecretSpec: {secretStoreRefs: [{name: a, kind: ClusterSecretStore}, {name: b, kind: ClusterSecretStore}]}}", []string{"a", "b"}, true},
		{"a SecretStore lives in every selected namespace", "spec: {pushSecretSpec: {secretStoreRefs: [{name: a, kind: ClusterSecretStore}, {name: b, kind: SecretStore}]}}", nil, false},
		{"no kind is a SecretStore", "spec: {pushSecretSpec: {secretStoreRefs: [{name: a}]}}", nil, false},
		{"a label selector", "spec: {pushSecretSpec: {secretStoreRefs: [{kind: ClusterSecretStore, labelSelector: {}}]}}", nil, false},
		{"no store", "spec: {pushSecretSpec: {}}", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ClusterStoresNamed(cpsFromYAML(t, tt.doc))
			if ok != tt.resolved || strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("ClusterStoresNamed = %v, %v; want %v, %v", got, ok, tt.want, tt.resolved)
			}
		})
	}
}

func TestStoresOfAnotherClass(t *testing.T) {
	tests := []struct {
		name    string
		stores  []StoreClass
		class   string
		another bool
	}{
		{"no stores resolved", nil, "", false},
		{"a store of no class is everyone's", []StoreClass{{Name: "a", Found: true}}, "mine", false},
		{"a store of this class", []StoreClass{{Name: "a", Class: "mine", Found: true}}, "mine", false},
		{"every store of another class", []StoreClass{{Name: "a", Class: "eso", Found: true}, {Name: "b", Class: "eso", Found: true}}, "mine", true},
		{"another class without --controller-class", []StoreClass{{Name: "a", Class: "eso", Found: true}}, "", true},
		{"one store could be ours", []StoreClass{{Name: "a", Class: "eso", Found: true}, {Name: "b", Class: "mine", Found: true}}, "mine", false},
		{"a missing store could be ours once created", []StoreClass{{Name: "a", Class: "eso", Found: true}, {Name: "b"}}, "mine", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := StoresOfAnotherClass(tt.stores, tt.class)
			if (why != "") != tt.another {
				t.Fatalf("StoresOfAnotherClass = %q; want another class: %v", why, tt.another)
			}
			if tt.another && !strings.Contains(why, tt.stores[0].Name) {
				t.Errorf("%q does not name the store", why)
			}
		})
	}
}

func TestReadyCondition(t *testing.T) {
	fail := func(ns ...string) []esv1alpha1.ClusterPushSecretNamespaceFailure {
		var out []esv1alpha1.ClusterPushSecretNamespaceFailure
		for _, n := range ns {
			out = append(out, esv1alpha1.ClusterPushSecretNamespaceFailure{Namespace: n, Reason: "push secret already exists in namespace"})
		}
		return out
	}
	tests := []struct {
		name     string
		n        int
		failed   []esv1alpha1.ClusterPushSecretNamespaceFailure
		status   corev1.ConditionStatus
		reason   string
		mentions []string
	}{
		{"nothing matches", 0, nil, corev1.ConditionTrue, ReasonSynced, []string{"No namespace matches"}},
		{"one namespace", 1, nil, corev1.ConditionTrue, ReasonSynced, []string{"ps", "1 selected namespace"}},
		{"all namespaces", 3, nil, corev1.ConditionTrue, ReasonSynced, []string{"all 3"}},
		{"one failed", 3, fail("a"), corev1.ConditionFalse, ReasonErrored, []string{"one or more namespaces failed", "1 of 3", "a: push secret already exists"}},
		{"several failed", 3, fail("a", "b"), corev1.ConditionFalse, ReasonErrored, []string{"2 of 3", "a:", "and 1 more"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, reason, msg := ReadyCondition("ps", tt.n, tt.failed)
			if status != tt.status || reason != tt.reason {
				t.Fatalf("ReadyCondition = %s %s %q; want %s %s", status, reason, msg, tt.status, tt.reason)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(msg, m) {
					t.Errorf("message %q does not mention %q", msg, m)
				}
			}
		})
	}
}

// FuzzCheckSpec: no ClusterPushSecret panics the checks, and one that
// passes them always has a selector that compiles and can select.
func FuzzCheckSpec(f *testing.F) {
	f.Add(`{"spec":{"namespaceSelectors":[{"matchLabels":{"cool":"label"}}],"refreshTime":"1m"}}`)
	f.Add(`{"spec":{"namespaceSelectors":[null,{}]}}`)
	f.Add(`{"spec":{"namespaceSelectors":[{"matchExpressions":[{"key":"a","operator":"In"}]}]}}`)
	f.Add(`{"spec":{"refreshTime":3}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var cps esv1alpha1.ClusterPushSecret
		if err := json.Unmarshal([]byte(doc), &cps); err != nil {
			return
		}
		if CheckSpec(&cps) != nil {
			return
		}
		sel, err := NewSelector(&cps)
		if err != nil || sel.Empty() {
			t.Fatalf("a spec that passed the checks has selector %v, %v", sel, err)
		}
		if cps.Spec.RefreshInterval.Err() != nil {
			t.Fatal("a spec that passed the checks has an invalid refreshTime")
		}
	})
}
