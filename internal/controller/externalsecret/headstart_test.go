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

// A reconcile waits for the head start only until the page is listed. An
// object of the page the head start has not synced yet is put off, not
// waited for, and queued again once the head start releases it; other
// objects go on at once, and an object released before any reconcile came
// is not queued again.
func TestHeadStartPutsOffOnlyTheObjectsOfItsPage(t *testing.T) {
	var requeued []types.NamespacedName
	h := newHeadStart(&Reconciler{}, 2, logr.Discard(), func(_ context.Context, key types.NamespacedName) {
		requeued = append(requeued, key)
	})
	inPage := types.NamespacedName{Namespace: "n", Name: "in-page"}
	quiet := types.NamespacedName{Namespace: "n", Name: "in-page-too"}
	other := types.NamespacedName{Namespace: "n", Name: "other"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Before the page is listed, every reconcile waits.
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if _, err := h.holds(short, other); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("holds before the page was listed = %v; want it to wait until ctx ends", err)
	}
	h.held[inPage], h.held[quiet] = false, false
	close(h.listed)

	if held, err := h.holds(ctx, other); err != nil || held {
		t.Fatalf("holds(an object outside the page) = %v, %v; want false", held, err)
	}
	if held, err := h.holds(ctx, inPage); err != nil || !held {
		t.Fatalf("holds(an object of the page not yet synced) = %v, %v; want true", held, err)
	}
	h.release(ctx, quiet)
	h.release(ctx, inPage)
	h.release(ctx, inPage) // a second release is harmless
	if len(requeued) != 1 || requeued[0] != inPage {
		t.Fatalf("queued again: %v; want only %v, whose reconcile was put off", requeued, inPage)
	}
	if held, err := h.holds(ctx, inPage); err != nil || held {
		t.Fatalf("holds(an object the head start synced) = %v, %v; want false", held, err)
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
