package kube

import (
	"unique"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Intern returns s backed by one copy shared by every interned string
// equal to it (the unique package's canonical value). Objects decoded from
// the API server each carry their own copy of every string; strings that
// repeat across thousands of cached objects (namespaces, label and
// annotation keys, kinds, condition reasons) are interned by the cache
// transforms to keep one.
func Intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// internKeys returns m with its keys (and, when values is true, its
// values) interned: a new map, as a map's keys cannot be replaced in
// place.
func internKeys(m map[string]string, values bool) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if values {
			v = Intern(v)
		}
		out[Intern(k)] = v
	}
	return out
}

// InternMeta interns what repeats across objects in m: the namespace, the
// label keys and values, the annotation keys and the kinds and API
// versions of the owner references.
func InternMeta(m *metav1.ObjectMeta) {
	m.Namespace = Intern(m.Namespace)
	m.Labels = internKeys(m.Labels, true)
	m.Annotations = internKeys(m.Annotations, false)
	for i := range m.OwnerReferences {
		r := &m.OwnerReferences[i]
		r.APIVersion, r.Kind = Intern(r.APIVersion), Intern(r.Kind)
	}
}

// InternSecret interns what repeats across Secrets in s: its metadata
// (InternMeta), its type and the keys of its data.
func InternSecret(s *corev1.Secret) {
	InternMeta(&s.ObjectMeta)
	s.Type = corev1.SecretType(Intern(string(s.Type)))
	if len(s.Data) > 0 {
		data := make(map[string][]byte, len(s.Data))
		for k, v := range s.Data {
			data[Intern(k)] = v
		}
		s.Data = data
	}
}
