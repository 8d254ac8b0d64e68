package kube_test

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/kube"
)

func TestSecretMetadataTransformKeepsWhatTheWatchesNeed(t *testing.T) {
	in := kube.SecretMetadata()
	in.Namespace, in.Name, in.UID, in.ResourceVersion = "ns", "s", "uid", "42"
	in.Labels = map[string]string{"push": "yes"}
	in.Annotations = map[string]string{"keyferry.io/adopt": "true", "kubectl.kubernetes.io/last-applied-configuration": "{...}"}
	in.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	in.OwnerReferences = []metav1.OwnerReference{{Name: "o"}}

	out, err := kube.SecretMetadataTransform("keyferry.io/adopt")(in)
	if err != nil {
		t.Fatal(err)
	}
	m := out.(*metav1.PartialObjectMetadata)
	want := kube.SecretMetadata()
	want.Namespace, want.Name, want.ResourceVersion = "ns", "s", "42"
	want.Labels = map[string]string{"push": "yes"}
	want.Annotations = map[string]string{"keyferry.io/adopt": "true"}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("kept %+v\nwant %+v", m, want)
	}
	bare, _ := kube.SecretMetadataTransform()(in)
	if bare.(*metav1.PartialObjectMetadata).Annotations != nil {
		t.Fatal("an annotation not asked for was kept")
	}
	if got, _ := kube.SecretMetadataTransform()("not metadata"); got != "not metadata" {
		t.Fatal("another object type was changed")
	}
}

// The informer transforms each object of its initial stream twice; the
// second pass must neither copy nor change what the first kept.
func TestSecretMetadataTransformIsIdempotent(t *testing.T) {
	transform := kube.SecretMetadataTransform("keyferry.io/adopt")
	fresh := func() *metav1.PartialObjectMetadata {
		in := kube.SecretMetadata()
		in.Namespace, in.Name, in.UID, in.ResourceVersion = "ns", "s", "uid", "42"
		in.CreationTimestamp = metav1.Now()
		return in
	}
	for _, tc := range []struct {
		name string
		edit func(*metav1.PartialObjectMetadata)
	}{
		{"bare", func(*metav1.PartialObjectMetadata) {}},
		{"labels", func(m *metav1.PartialObjectMetadata) { m.Labels = map[string]string{"push": "yes"} }},
		{"kept annotation", func(m *metav1.PartialObjectMetadata) {
			m.Annotations = map[string]string{"keyferry.io/adopt": "ExternalSecret/a", "other": "x"}
		}},
		{"only dropped annotations", func(m *metav1.PartialObjectMetadata) { m.Annotations = map[string]string{"other": "x"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := fresh()
			tc.edit(in)
			once, err := transform(in)
			if err != nil {
				t.Fatal(err)
			}
			if once == any(in) {
				t.Fatal("an object straight from the API server was kept whole")
			}
			kept := once.(*metav1.PartialObjectMetadata).DeepCopy()
			twice, err := transform(once)
			if err != nil {
				t.Fatal(err)
			}
			if twice != once {
				t.Fatal("a reduced object was copied again")
			}
			if !reflect.DeepEqual(twice.(*metav1.PartialObjectMetadata), kept) {
				t.Fatalf("the second pass changed %+v into %+v", kept, twice)
			}
		})
	}
	// An object with any metadata the transform drops is reduced, not
	// returned as it is.
	for _, edit := range []func(*metav1.PartialObjectMetadata){
		func(m *metav1.PartialObjectMetadata) { m.UID = "uid" },
		func(m *metav1.PartialObjectMetadata) { m.Finalizers = []string{"f"} },
		func(m *metav1.PartialObjectMetadata) { m.Annotations = map[string]string{} },
		func(m *metav1.PartialObjectMetadata) { m.Generation = 1 },
	} {
		in := kube.SecretMetadata()
		in.Namespace, in.Name, in.ResourceVersion = "ns", "s", "42"
		edit(in)
		if out, _ := transform(in); out == any(in) {
			t.Fatalf("%+v was returned unreduced", in.ObjectMeta)
		}
	}
}
