package kube

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// SecretWatchStartedLog is the line a controller logs when it starts the
// watch of every Secret's metadata (a DeferredSource).
const SecretWatchStartedLog = "watching the metadata of every Secret from now on"

// Queue is a controller's work queue, as a source is handed it.
type Queue = workqueue.TypedRateLimitingInterface[reconcile.Request]

// DeferredSource is a controller's source whose watch starts the first time
// Activate is called, not when the controller starts. The watch of every
// Secret's metadata (NewSecretMetadataCache) is one: it serves only
// ExternalSecrets that wait for a person's change to a Secret and
// PushSecrets, so a cluster that has neither does not stream, decode and
// keep the metadata of each of its Secrets.
//
// The controller does not wait for a deferred source to sync. Changes made
// between the moment something decided it needs the watch and the moment
// the watch has synced are not delivered as changes (a cache that reports
// changes only drops its initial list), so once the watch has synced,
// OnSynced is called with the controller's queue to wake whatever may have
// missed one.
type DeferredSource struct {
	inner    source.SyncingSource
	onSynced func(context.Context, Queue)

	mu     sync.Mutex
	ctx    context.Context // the controller's, from Start
	queue  Queue
	active bool
}

var _ source.Source = (*DeferredSource)(nil)

// NewDeferredSource returns a source that starts inner when activated and
// then, once inner has synced, calls onSynced (may be nil).
func NewDeferredSource(inner source.SyncingSource, onSynced func(context.Context, Queue)) *DeferredSource {
	return &DeferredSource{inner: inner, onSynced: onSynced}
}

// Start is called by the controller; it starts the watch only if the
// source was activated before.
func (d *DeferredSource) Start(ctx context.Context, q Queue) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.queue != nil {
		return errors.New("deferred source started twice")
	}
	d.ctx, d.queue = ctx, q
	if d.active {
		return d.startLocked()
	}
	return nil
}

// Activate starts the watch, at once if the controller has started,
// otherwise when it starts. It reports whether this call activated it:
// calls after the first that succeeded do nothing. When the watch fails to
// start, the next call tries again (the caller's retry is what wakes it).
func (d *DeferredSource) Activate() (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active {
		return false, nil
	}
	if d.queue != nil {
		if err := d.startLocked(); err != nil {
			return false, err
		}
	}
	d.active = true
	return true, nil
}

// startLocked starts the watch; Start and Activate each call it only when
// the other has already run, so it runs once.
func (d *DeferredSource) startLocked() error {
	if err := d.inner.Start(d.ctx, d.queue); err != nil {
		return fmt.Errorf("starting the deferred watch %v: %w", d.inner, err)
	}
	ctx, q := d.ctx, d.queue
	go func() {
		if err := d.inner.WaitForSync(ctx); err != nil {
			return // the controller is stopping
		}
		if d.onSynced != nil {
			d.onSynced(ctx, q)
		}
	}()
	return nil
}

// String names the source in controller-runtime's logs.
func (d *DeferredSource) String() string {
	return fmt.Sprintf("deferred(%v)", d.inner)
}
