package externalsecret

import (
	"fmt"
	"runtime"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
)

func TestConfigMapMetadataTransformKeepsWhatTheWatchNeeds(t *testing.T) {
	m := configMapMetadata()
	m.Namespace, m.Name, m.UID, m.ResourceVersion = "ns", "cm", "u", "7"
	m.Labels = map[string]string{engine.LabelManaged: "true", "app": "x"}
	m.Annotations = map[string]string{engine.AnnotationOwner: "ExternalSecret/a", engine.AnnotationAdopt: "ExternalSecret/b", "note": "big"}
	m.OwnerReferences = []metav1.OwnerReference{
		{APIVersion: "apps/v1", Kind: "Deployment", Name: "d", UID: "d"},
		{APIVersion: esv1.GroupVersion.String(), Kind: Kind, Name: "a", UID: "a", Controller: ptrTo(true)},
	}
	m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	got, err := configMapMetadataTransform(m)
	if err != nil {
		t.Fatal(err)
	}
	out := got.(*metav1.PartialObjectMetadata)
	if out.Namespace != "ns" || out.Name != "cm" || out.UID != "u" || out.ResourceVersion != "7" {
		t.Errorf("identity lost: %+v", out.ObjectMeta)
	}
	if len(out.OwnerReferences) != 1 || out.OwnerReferences[0].Name != "a" {
		t.Errorf("ownerReferences = %v, want the controller only", out.OwnerReferences)
	}
	if len(out.Annotations) != 2 || out.Labels != nil || out.ManagedFields != nil {
		t.Errorf("kept more than needed: annotations %v labels %v", out.Annotations, out.Labels)
	}
	if reqs := secretOwner(t.Context(), out); len(reqs) != 1 || reqs[0].Name != "a" {
		t.Errorf("a change maps to %v, want ExternalSecret a", reqs)
	}
}

// TestConfigMapMetadataFootprint measures what the ConfigMap metadata watch
// keeps per ConfigMap (most ConfigMaps in a cluster are not keyferry's).
func TestConfigMapMetadataFootprint(t *testing.T) {
	const n = 20000
	store := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		m := configMapMetadata()
		m.Namespace = fmt.Sprintf("team-%03d", i%200)
		m.Name = fmt.Sprintf("app-%05d-config", i)
		m.UID = types.UID(fmt.Sprintf("9b2f6c1e-3d4a-4f5b-8c7d-%012d", i))
		m.ResourceVersion = fmt.Sprint(1000000 + i)
		m.Labels = map[string]string{"app.kubernetes.io/name": "app", "app.kubernetes.io/instance": "prod"}
		m.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"app-%05d"}}`, i)}
		if i%10 == 0 { // one in ten written by an ExternalSecret
			m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "external-secrets.io/v1", Kind: Kind, Name: "app", UID: "a", Controller: ptrTo(true), BlockOwnerDeletion: ptrTo(true)}}
		}
		out, err := configMapMetadataTransform(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Add(out); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("ConfigMap metadata watch keeps about %d bytes per ConfigMap (%d ConfigMaps: %.1f MiB)", per, n, float64(per*n)/(1<<20))
	if per > 1024 {
		t.Errorf("%d bytes per ConfigMap; the transform should keep far less", per)
	}
	runtime.KeepAlive(store)
}
