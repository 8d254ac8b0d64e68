package unsupported

import (
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
)

// The controller-class rules: ESO's spec.controller, read the way the other
// front-ends read it (engine.HandlesStore). Each check returns why the object
// belongs to another controller class, or "" when this keyferry reports it.

// generatorOfAnotherClass: a generator whose spec.controller (Fake,
// BeyondtrustWorkloadCredentialsDynamicSecret), or a ClusterGenerator whose
// generator's controller, names another class.
func generatorOfAnotherClass(obj *unstructured.Unstructured, class string) string {
	if c, _, _ := unstructured.NestedString(obj.Object, "spec", "controller"); !handles(class, c) {
		return fmt.Sprintf("spec.controller is %q", c)
	}
	gen, _, _ := unstructured.NestedMap(obj.Object, "spec", "generator")
	for _, field := range sortedKeys(gen) {
		spec, ok := gen[field].(map[string]any)
		if !ok {
			continue
		}
		if c, _ := spec["controller"].(string); !handles(class, c) {
			return fmt.Sprintf("spec.generator.%s.controller is %q", field, c)
		}
	}
	return ""
}

// storeRef is one store a PushSecret names, with the class the store was
// found to have.
type storeRef struct {
	Kind, Name string
	// Class is the store's spec.controller; Found is false when the store
	// could not be read (missing, or of a kind this keyferry does not
	// watch).
	Class string
	Found bool
}

// pushSecretStores returns the stores a PushSecret (or the PushSecrets of a
// ClusterPushSecret) names, and whether they can all be resolved by name:
// a label selector, or a SecretStore named by a ClusterPushSecret (it lives
// in every selected namespace), cannot.
func pushSecretStores(obj *unstructured.Unstructured) ([]storeRef, bool) {
	path := []string{"spec", "secretStoreRefs"}
	cluster := obj.GetKind() == esv1alpha1.ClusterPushSecretKind
	if cluster {
		path = []string{"spec", "pushSecretSpec", "secretStoreRefs"}
	}
	raw, _, _ := unstructured.NestedSlice(obj.Object, path...)
	if len(raw) == 0 {
		return nil, false
	}
	refs := make([]storeRef, 0, len(raw))
	for _, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, false
		}
		name, _ := m["name"].(string)
		kind, _ := m["kind"].(string)
		if kind == "" {
			kind = esv1.SecretStoreKind
		}
		if name == "" || m["labelSelector"] != nil || cluster && kind != esv1.ClusterSecretStoreKind {
			return nil, false
		}
		refs = append(refs, storeRef{Kind: kind, Name: name})
	}
	return refs, true
}

// storesOfAnotherClass: every store the PushSecret names exists and is of
// another class (ESO pushes only to the stores of its class; keyferry
// reports the object when at least one store could be its own).
func storesOfAnotherClass(refs []storeRef, class string) string {
	if len(refs) == 0 {
		return ""
	}
	var names []string
	for _, r := range refs {
		if !r.Found || handles(class, r.Class) {
			return ""
		}
		names = append(names, fmt.Sprintf("%s %q (controller %q)", r.Kind, r.Name, r.Class))
	}
	return "every store it names is of another controller class: " + strings.Join(names, ", ")
}

func handles(class, controller string) bool {
	return engine.HandlesStore(class, &esv1.SecretStoreSpec{Controller: controller})
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
