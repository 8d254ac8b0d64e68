package externalsecret

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/kube"
)

func TestWaitingMapsASecretToItsWaiters(t *testing.T) {
	w := newWaiting()
	a := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}
	a.Spec.Target.Name = "shared"
	b := &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}}
	b.Spec.Target.Name = "shared"
	w.wait(a)
	w.wait(b)
	w.wait(a) // a second refusal replaces the first

	shared := kube.SecretMetadata()
	shared.Namespace, shared.Name = "ns", "shared"
	if got := names(w.waitersOf(context.Background(), shared)); got != "[a b]" && got != "[b a]" {
		t.Fatalf("waiters of shared: %s", got)
	}
	other := kube.SecretMetadata()
	other.Namespace, other.Name = "other", "shared"
	if got := w.waitersOf(context.Background(), other); len(got) != 0 {
		t.Fatalf("a Secret of the same name in another namespace wakes %v", got)
	}
	// Every waiter is woken once the watch has synced (watchSecretMetadata).
	if got := w.all(); len(got) != 2 {
		t.Fatalf("all waiters: %v; want ns/a and ns/b", got)
	}
	w.done(types.NamespacedName{Namespace: "ns", Name: "a"})
	if got := w.all(); len(got) != 1 || got[0] != (types.NamespacedName{Namespace: "ns", Name: "b"}) {
		t.Fatalf("all waiters after a synced: %v; want ns/b", got)
	}
	if got := names(w.waitersOf(context.Background(), shared)); got != "[b]" {
		t.Fatalf("after a synced: %s", got)
	}
	w.done(types.NamespacedName{Namespace: "ns", Name: "b"})
	if len(w.bySecret) != 0 || len(w.byES) != 0 {
		t.Fatalf("records left behind: %v %v", w.bySecret, w.byES)
	}

	// The adopt annotation wakes the ExternalSecret it names, waiting or not.
	adopted := kube.SecretMetadata()
	adopted.Namespace, adopted.Name = "ns", "x"
	adopted.Annotations = map[string]string{engine.AnnotationAdopt: "ExternalSecret/app"}
	if got := names(w.waitersOf(context.Background(), adopted)); got != "[app]" {
		t.Fatalf("adopt annotation wakes %s", got)
	}
}

func names(reqs []reconcile.Request) string {
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, r.Name)
	}
	return fmt.Sprint(out)
}

// TestSecretMetadataFootprint measures what the metadata-only watch keeps
// per Secret: the transformed object in an informer store with the
// namespace index controller-runtime adds.
func TestSecretMetadataFootprint(t *testing.T) {
	const n = 20000
	store := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		m := kube.SecretMetadata()
		m.Namespace = fmt.Sprintf("team-%03d", i%200)
		m.Name = fmt.Sprintf("app-%05d-credentials", i)
		m.UID = types.UID(fmt.Sprintf("9b2f6c1e-3d4a-4f5b-8c7d-%012d", i))
		m.ResourceVersion = fmt.Sprint(1000000 + i)
		m.Labels = map[string]string{"app.kubernetes.io/name": "app", "app.kubernetes.io/instance": "prod"}
		m.Annotations = map[string]string{"kubectl.kubernetes.io/last-applied-configuration": fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"app-%05d"}}`, i)}
		m.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationUpdate}}
		out, err := secretMetadataTransform(m)
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
	t.Logf("metadata-only watch keeps about %d bytes per Secret (%d Secrets: %.1f MiB)", per, n, float64(per*n)/(1<<20))
	// A PartialObjectMetadata per Secret kept about 800 bytes here.
	if per > 512 {
		t.Errorf("%d bytes per Secret; a SecretRef should keep far less", per)
	}
	runtime.KeepAlive(store)
}
