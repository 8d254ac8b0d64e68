package externalsecret

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A reconcile waits for the head start only until the page is listed and,
// for an object of the page, until the head start has synced it: other
// objects never wait for a slow sync of the head start.
func TestHeadStartHoldsOnlyTheObjectsOfItsPage(t *testing.T) {
	h := newHeadStart(&Reconciler{}, 2, logr.Discard())
	inPage := types.NamespacedName{Namespace: "n", Name: "in-page"}
	other := types.NamespacedName{Namespace: "n", Name: "other"}
	waitFor := func(key types.NamespacedName, within time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		return h.wait(ctx, key)
	}

	// Before the page is listed, every reconcile waits.
	if err := waitFor(other, 20*time.Millisecond); err == nil {
		t.Fatal("a reconcile ran before the head start had listed its page")
	}
	h.syncing[inPage] = make(chan struct{})
	close(h.listed)

	if err := waitFor(other, time.Minute); err != nil {
		t.Fatalf("an object outside the page waited for the head start: %v", err)
	}
	if err := waitFor(inPage, 20*time.Millisecond); err == nil {
		t.Fatal("an object of the page was reconciled while the head start held it")
	}
	h.release(inPage)
	h.release(inPage) // a second release is harmless
	if err := waitFor(inPage, time.Minute); err != nil {
		t.Fatalf("an object the head start synced still waits: %v", err)
	}
}

// notStartedReader answers reads as the manager's cache does until the
// manager starts it: ErrCacheNotStarted, here for the first reads.
type notStartedReader struct {
	client.Reader
	refusals int
	reads    int
}

func (r *notStartedReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	r.reads++
	if r.reads <= r.refusals {
		return &cache.ErrCacheNotStarted{}
	}
	return nil
}

// The head start syncs only once the manager has started its cache, which
// refuses reads until then rather than waiting; another error ends the
// wait, as does ctx.
func TestHeadStartWaitsForTheCacheToStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := &notStartedReader{refusals: 3}
	if err := cacheStarted(ctx, r, "n"); err != nil || r.reads != 4 {
		t.Fatalf("cacheStarted = %v after %d reads; want nil after 4", err, r.reads)
	}
	never := &notStartedReader{refusals: 1 << 30}
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if err := cacheStarted(short, never, "n"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cacheStarted on a cache never started = %v; want the context's error", err)
	}
}
