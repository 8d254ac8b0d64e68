package kube

import (
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// secret is a Secret as the API server's answer decodes: every string its
// own copy.
func secret(name string) *corev1.Secret {
	c := func(s string) string { return string([]byte(s)) }
	yes := true
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: c(name), Namespace: c("team-a"),
			Labels:          map[string]string{c("reconcile.external-secrets.io/managed"): c("true")},
			Annotations:     map[string]string{c("keyferry.io/owner"): c("ExternalSecret/" + name)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: c("external-secrets.io/v1"), Kind: c("ExternalSecret"), Name: c(name), Controller: &yes}},
		},
		Type: corev1.SecretType(c("Opaque")),
		Data: map[string][]byte{c("password"): []byte("v-" + name)},
	}
}

func same(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// Interning changes no value of a Secret, and two Secrets then share the
// strings that repeat across them.
func TestInternSecretKeepsValuesAndSharesRepeats(t *testing.T) {
	a, b := secret("app-a"), secret("app-b")
	wantA, wantB := a.DeepCopy(), b.DeepCopy()
	InternSecret(a)
	InternSecret(b)
	if !equality.Semantic.DeepEqual(a, wantA) || !equality.Semantic.DeepEqual(b, wantB) {
		t.Fatalf("interning changed a Secret:\n%+v\nwant\n%+v", a, wantA)
	}
	key := func(m map[string]string) string {
		for k := range m {
			return k
		}
		return ""
	}
	dataKey := func(m map[string][]byte) string {
		for k := range m {
			return k
		}
		return ""
	}
	shared := map[string][2]string{
		"namespace":         {a.Namespace, b.Namespace},
		"label key":         {key(a.Labels), key(b.Labels)},
		"label value":       {a.Labels[key(a.Labels)], b.Labels[key(b.Labels)]},
		"annotation key":    {key(a.Annotations), key(b.Annotations)},
		"owner API version": {a.OwnerReferences[0].APIVersion, b.OwnerReferences[0].APIVersion},
		"owner kind":        {a.OwnerReferences[0].Kind, b.OwnerReferences[0].Kind},
		"type":              {string(a.Type), string(b.Type)},
		"data key":          {dataKey(a.Data), dataKey(b.Data)},
	}
	for what, p := range shared {
		if !same(p[0], p[1]) {
			t.Errorf("%s %q is not shared", what, p[0])
		}
	}
	// Names are an object's own: interning them would cost the interner's
	// entry for nothing shared.
	c := secret("app-a")
	InternSecret(c)
	if same(c.Name, a.Name) {
		t.Error("names are interned")
	}
}

// Interning an interned object changes nothing (the cache may apply its
// transform twice).
func TestInternSecretIsIdempotent(t *testing.T) {
	s := secret("app-a")
	InternSecret(s)
	want := s.DeepCopy()
	InternSecret(s)
	if !equality.Semantic.DeepEqual(s, want) {
		t.Fatalf("second interning changed the Secret: %+v", s)
	}
}

func TestInternEmpty(t *testing.T) {
	var s corev1.Secret
	InternSecret(&s)
	if s.Labels != nil || s.Annotations != nil || s.Data != nil || Intern("") != "" {
		t.Fatalf("interning an empty Secret made %+v", s)
	}
}
