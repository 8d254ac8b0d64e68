package externalsecret

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/types"
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
