package kube_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/keyferry/keyferry/internal/kube"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// recorder records the events a handler is told of, as "add <name>",
// "update <name>", "delete <name>".
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) handler() toolscache.ResourceEventHandler {
	rec := func(verb string, obj any) {
		name := ""
		if o, ok := obj.(metav1.Object); ok {
			name = o.GetName()
		}
		r.mu.Lock()
		r.events = append(r.events, verb+" "+name)
		r.mu.Unlock()
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { rec("add", obj) },
		UpdateFunc: func(_, obj any) { rec("update", obj) },
		DeleteFunc: func(obj any) { rec("delete", obj) },
	}
}

func (r *recorder) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// waitFor polls until the recorder has seen event.
func (r *recorder) waitFor(t *testing.T, event string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("event %q", event), func(context.Context) (bool, string) {
		seen := r.seen()
		return slices.Contains(seen, event), fmt.Sprintf("seen %v", seen)
	})
}

// The Secret metadata cache's handlers are told of changes, not of the
// Secrets that existed when they were added: those cost a call of every
// handler for every Secret in the cluster at start-up, and the objects
// waiting for them are reconciled at start-up anyway.
func TestSecretMetadataCacheTellsChangesOnly(t *testing.T) {
	cs := clientset(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const ns = "metadata-changes"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secret := func(name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"k": []byte("v")}}
	}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret("existing"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	cluster, err := testCluster.Get()
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cluster.Config, ctrl.Options{Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := kube.NewSecretMetadataCache(mgr, ns, "keyferry.io/adopt")
	if err != nil {
		t.Fatal(err)
	}
	informer, err := c.GetInformer(ctx, kube.SecretMetadata())
	if err != nil {
		t.Fatal(err)
	}
	var early, late recorder
	if _, err := informer.AddEventHandler(early.handler()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); <-done }()
	if !c.WaitForCacheSync(ctx) {
		t.Fatal("the cache did not sync")
	}
	// A handler added to a synced informer is not told of what it holds.
	if _, err := informer.AddEventHandler(late.handler()); err != nil {
		t.Fatal(err)
	}

	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret("created"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	existing, err := cs.CoreV1().Secrets(ns).Get(ctx, "existing", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	existing.Labels = map[string]string{"changed": "yes"}
	if _, err := cs.CoreV1().Secrets(ns).Update(ctx, existing, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Secrets(ns).Delete(ctx, "created", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*recorder{&early, &late} {
		// Events reach a handler in order: once the deletion is seen,
		// an addition of the existing Secret would have been too.
		r.waitFor(t, "delete created")
		want := []string{"add created", "update existing", "delete created"}
		if got := r.seen(); !slices.Equal(got, want) {
			t.Errorf("handler told of %v; want %v", got, want)
		}
	}
	// The cache holds SecretRefs, for handlers: reading one back as
	// PartialObjectMetadata fails rather than returning half an object.
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "existing"}, kube.SecretMetadata()); err == nil {
		t.Error("a Get of PartialObjectMetadata from the Secret metadata cache succeeded")
	}
}
