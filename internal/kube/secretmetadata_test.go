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
	want.Namespace, want.Name, want.UID, want.ResourceVersion = "ns", "s", "uid", "42"
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
