package operator

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// TestInformersStartWithAList: every informer of the manager's cache, the
// metadata-only ones of unserved generator kinds included, starts with a
// LIST. A watch-list stream would wait for the API server's closing
// bookmark (up to a second for an empty collection) and hold back every
// controller's start.
func TestInformersStartWithAList(t *testing.T) {
	for name, obj := range map[string]runtime.Object{
		"typed":         &esv1.ExternalSecret{},
		"metadata only": &metav1.PartialObjectMetadata{},
	} {
		t.Run(name, func(t *testing.T) {
			var (
				mu                sync.Mutex
				lists, watchLists int
			)
			lw := &toolscache.ListWatch{
				ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
					mu.Lock()
					defer mu.Unlock()
					lists++
					return &corev1.SecretList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}, nil
				},
				WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
					mu.Lock()
					defer mu.Unlock()
					if o.SendInitialEvents != nil && *o.SendInitialEvents {
						watchLists++
					}
					return watch.NewFake(), nil
				},
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			inf := newInformer(lw, obj, 0, toolscache.Indexers{})
			go inf.RunWithContext(ctx)
			deadline := time.Now().Add(10 * time.Second)
			for !inf.HasSynced() {
				if time.Now().After(deadline) {
					mu.Lock()
					defer mu.Unlock()
					t.Fatalf("the informer did not sync within 10s (%d LISTs, %d watch-list requests)", lists, watchLists)
				}
				time.Sleep(5 * time.Millisecond)
			}
			mu.Lock()
			defer mu.Unlock()
			if lists != 1 || watchLists != 0 {
				t.Fatalf("the informer made %d LISTs and %d watch-list requests; want 1 LIST and no stream", lists, watchLists)
			}
		})
	}
}

// TestWatchErrorsAreReportedUnlessStopping: a failed LIST or watch is
// reported as client-go reports it, except once the informer stops, when
// the requests in flight fail with "context canceled".
func TestWatchErrorsAreReportedUnlessStopping(t *testing.T) {
	var reported []error
	saved := utilruntime.ErrorHandlers
	utilruntime.ErrorHandlers = []utilruntime.ErrorHandler{func(_ context.Context, err error, _ string, _ ...any) {
		reported = append(reported, err)
	}}
	defer func() { utilruntime.ErrorHandlers = saved }()
	r := toolscache.NewReflector(&toolscache.ListWatch{}, &corev1.Secret{}, toolscache.NewStore(toolscache.MetaNamespaceKeyFunc), 0)

	watchErrorUnlessStopping(t.Context(), r, errors.New("connection refused"))
	if len(reported) != 1 {
		t.Fatalf("a failed watch while running was reported %d times; want once", len(reported))
	}
	stopped, cancel := context.WithCancel(t.Context())
	cancel()
	watchErrorUnlessStopping(stopped, r, context.Canceled)
	if len(reported) != 1 {
		t.Fatalf("a watch ended by the stop was reported: %v", reported[1:])
	}
}
