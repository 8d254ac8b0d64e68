package kube_test

import (
	"reflect"
	"testing"
	"unsafe"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/kube"
)

func TestSecretMetadataTransformKeepsWhatTheWatchesNeed(t *testing.T) {
	in := kube.SecretMetadata()
	in.Namespace, in.Name, in.UID, in.ResourceVersion = "ns", "s", "uid", "42"
	in.Labels = map[string]string{"push": "yes", "app": "a"}
	in.Annotations = map[string]string{"keyferry.io/adopt": "true", "kubectl.kubernetes.io/last-applied-configuration": "{...}"}
	in.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	in.OwnerReferences = []metav1.OwnerReference{{Name: "o"}}
	in.Finalizers = []string{"f"}

	out, err := kube.SecretMetadataTransform("keyferry.io/adopt")(in)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := out.(*kube.SecretRef)
	if !ok {
		t.Fatalf("transform returned %T, want *kube.SecretRef", out)
	}
	if r.GetNamespace() != "ns" || r.GetName() != "s" || r.GetResourceVersion() != "42" {
		t.Fatalf("kept %s/%s at %s, want ns/s at 42", r.GetNamespace(), r.GetName(), r.GetResourceVersion())
	}
	if got, want := r.GetLabels(), map[string]string{"push": "yes", "app": "a"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("labels %v, want %v", got, want)
	}
	if got, want := r.GetAnnotations(), map[string]string{"keyferry.io/adopt": "true"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("annotations %v, want %v", got, want)
	}
	if r.GetUID() != "" || r.GetOwnerReferences() != nil || r.GetManagedFields() != nil || r.GetFinalizers() != nil {
		t.Fatal("metadata the watches do not read was kept")
	}
	if gvk := r.GetObjectKind().GroupVersionKind(); gvk.Kind != "Secret" || gvk.Version != "v1" || gvk.Group != "" {
		t.Fatalf("kind %v, want v1 Secret", gvk)
	}
	bare, _ := kube.SecretMetadataTransform()(in)
	if bare.(*kube.SecretRef).GetAnnotations() != nil {
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
	in := kube.SecretMetadata()
	in.Namespace, in.Name, in.ResourceVersion = "ns", "s", "42"
	in.Labels = map[string]string{"push": "yes"}
	once, err := transform(in)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := transform(once)
	if err != nil {
		t.Fatal(err)
	}
	if twice != once {
		t.Fatal("a reduced object was copied again")
	}
}

// What a handler gets is a client.Object whose maps are its own: changing
// them changes neither the cached SecretRef nor its copies.
func TestSecretRefIsAClientObjectWithMapsOfItsOwn(t *testing.T) {
	in := kube.SecretMetadata()
	in.Namespace, in.Name, in.ResourceVersion = "ns", "s", "1"
	in.Labels = map[string]string{"a": "1"}
	var o client.Object = kube.NewSecretRef(in)
	o.GetLabels()["a"] = "changed"
	if got := o.GetLabels()["a"]; got != "1" {
		t.Fatalf("label a = %q after a caller changed its map, want 1", got)
	}
	c := o.DeepCopyObject().(client.Object)
	c.SetLabels(map[string]string{"b": "2"})
	c.SetName("other")
	if o.GetName() != "s" || !reflect.DeepEqual(o.GetLabels(), map[string]string{"a": "1"}) {
		t.Fatalf("changing a copy changed the original: %s %v", o.GetName(), o.GetLabels())
	}
	var _ runtime.Object = o
	if o.GetLabels() == nil || kube.NewSecretRef(kube.SecretMetadata()).GetLabels() != nil {
		t.Fatal("labels must be nil exactly when there are none")
	}
}

// The point of SecretRef is its size: the cache holds one per Secret in
// the cluster.
func TestSecretRefIsSmall(t *testing.T) {
	if got, partial := unsafe.Sizeof(kube.SecretRef{}), unsafe.Sizeof(metav1.PartialObjectMetadata{}); got > 96 || got*2 > partial {
		t.Fatalf("SecretRef is %d bytes (PartialObjectMetadata %d); keep it at most 96", got, partial)
	}
}
