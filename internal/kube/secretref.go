package kube

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// SecretRef is what the Secret metadata cache keeps of a Secret: its
// namespace, name and resourceVersion, its labels and the annotations the
// cache was asked to keep. The cache holds one for every Secret in the
// cluster, most of them unrelated to keyferry, so it is as small as the
// watches allow: 96 bytes and the pairs' backing arrays, against 288 bytes
// for a PartialObjectMetadata before its maps. Label and annotation strings
// are interned (Intern): label sets repeat across Secrets.
//
// It is a client.Object so that controller-runtime's sources can hand it
// to event handlers. The metadata it does not keep reads as zero, and
// setting it does nothing.
type SecretRef struct {
	absentMeta
	namespace, name, resourceVersion string
	// labels and annotations are key, value, key, value... in no order;
	// nil when there are none.
	labels, annotations []string
}

// NewSecretRef returns the SecretRef of a Secret's metadata, keeping the
// annotations named in keep.
func NewSecretRef(m metav1.Object, keep ...string) *SecretRef {
	r := &SecretRef{namespace: Intern(m.GetNamespace()), name: m.GetName(), resourceVersion: m.GetResourceVersion()}
	r.labels = pairs(m.GetLabels(), all)
	r.annotations = pairs(m.GetAnnotations(), keeping(keep))
	return r
}

// all keeps every key.
func all(string) bool { return true }

// keeping keeps the keys in keep.
func keeping(keep []string) func(string) bool {
	return func(k string) bool { return slices.Contains(keep, k) }
}

// pairs returns the entries of m whose key is kept as interned key, value
// pairs; nil when none is. It runs for every Secret of the initial list, so
// it allocates the pairs only.
func pairs(m map[string]string, kept func(string) bool) []string {
	n := 0
	for k := range m {
		if kept(k) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := make([]string, 0, 2*n)
	for k, v := range m {
		if kept(k) {
			out = append(out, Intern(k), Intern(v))
		}
	}
	return out
}

// toMap returns pairs as a new map; nil when there are none.
func toMap(p []string) map[string]string {
	if len(p) == 0 {
		return nil
	}
	m := make(map[string]string, len(p)/2)
	for i := 0; i+1 < len(p); i += 2 {
		m[p[i]] = p[i+1]
	}
	return m
}

func (r *SecretRef) GetNamespace() string              { return r.namespace }
func (r *SecretRef) SetNamespace(ns string)            { r.namespace = Intern(ns) }
func (r *SecretRef) GetName() string                   { return r.name }
func (r *SecretRef) SetName(name string)               { r.name = name }
func (r *SecretRef) GetResourceVersion() string        { return r.resourceVersion }
func (r *SecretRef) SetResourceVersion(rv string)      { r.resourceVersion = rv }
func (r *SecretRef) GetLabels() map[string]string      { return toMap(r.labels) }
func (r *SecretRef) SetLabels(l map[string]string)     { r.labels = pairs(l, all) }
func (r *SecretRef) GetAnnotations() map[string]string { return toMap(r.annotations) }
func (r *SecretRef) SetAnnotations(a map[string]string) {
	r.annotations = pairs(a, all)
}

// secretKind is the kind every SecretRef reports.
var secretKind = schema.GroupVersionKind{Version: "v1", Kind: "Secret"}

// GetObjectKind reports the Secret kind; setting it does nothing.
func (r *SecretRef) GetObjectKind() schema.ObjectKind { return secretObjectKind{} }

// DeepCopyObject returns a copy of r. The pairs are shared: nothing
// changes them in place.
func (r *SecretRef) DeepCopyObject() runtime.Object {
	c := *r
	return &c
}

// secretObjectKind is a SecretRef's fixed kind.
type secretObjectKind struct{}

func (secretObjectKind) SetGroupVersionKind(schema.GroupVersionKind) {}
func (secretObjectKind) GroupVersionKind() schema.GroupVersionKind   { return secretKind }

// absentMeta is the metadata a SecretRef does not keep: each getter returns
// the zero value and each setter does nothing. It takes no room.
type absentMeta struct{}

func (absentMeta) GetGenerateName() string                       { return "" }
func (absentMeta) SetGenerateName(string)                        {}
func (absentMeta) GetUID() types.UID                             { return "" }
func (absentMeta) SetUID(types.UID)                              {}
func (absentMeta) GetGeneration() int64                          { return 0 }
func (absentMeta) SetGeneration(int64)                           {}
func (absentMeta) GetSelfLink() string                           { return "" }
func (absentMeta) SetSelfLink(string)                            {}
func (absentMeta) GetCreationTimestamp() metav1.Time             { return metav1.Time{} }
func (absentMeta) SetCreationTimestamp(metav1.Time)              {}
func (absentMeta) GetDeletionTimestamp() *metav1.Time            { return nil }
func (absentMeta) SetDeletionTimestamp(*metav1.Time)             {}
func (absentMeta) GetDeletionGracePeriodSeconds() *int64         { return nil }
func (absentMeta) SetDeletionGracePeriodSeconds(*int64)          {}
func (absentMeta) GetFinalizers() []string                       { return nil }
func (absentMeta) SetFinalizers([]string)                        {}
func (absentMeta) GetOwnerReferences() []metav1.OwnerReference   { return nil }
func (absentMeta) SetOwnerReferences([]metav1.OwnerReference)    {}
func (absentMeta) GetManagedFields() []metav1.ManagedFieldsEntry { return nil }
func (absentMeta) SetManagedFields([]metav1.ManagedFieldsEntry)  {}
