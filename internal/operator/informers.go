package operator

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
)

// newInformer builds the manager cache's informers. Each starts with a
// paged LIST instead of client-go's watch-list stream (on by default since
// client-go 1.35): with the stream, the informer of an empty collection (no
// SecretSyncs, no ClusterSecretStores, no generators of a kind keyferry
// does not serve: the common case) waits up to about a second for the API
// server's closing bookmark (its watch cache sends bookmarks on a
// one-second tick), and every controller waits for its slowest informer.
// The metadata cache of every Secret in the cluster is a separate cache
// (kube.NewSecretMetadataCache) and keeps the stream, which holds less at
// once than a LIST of tens of thousands of Secrets (docs/performance.md).
func newInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	if l, ok := lw.(*toolscache.ListWatch); ok {
		lw = listingListWatch{l}
	}
	return toolscache.NewSharedIndexInformer(lw, obj, resync, indexers)
}

// listingListWatch is a ListWatch the reflector lists with (it reports no
// watch-list support).
type listingListWatch struct{ *toolscache.ListWatch }

// IsWatchListSemanticsUnSupported tells client-go's reflector to LIST.
func (listingListWatch) IsWatchListSemanticsUnSupported() bool { return true }

// watchErrorUnlessStopping reports a failed LIST or watch as client-go
// does, unless the informer is stopping: at shutdown the requests in
// flight fail with "context canceled", which is no error.
func watchErrorUnlessStopping(ctx context.Context, r *toolscache.Reflector, err error) {
	if ctx.Err() != nil {
		return
	}
	toolscache.DefaultWatchErrorHandler(ctx, r, err)
}
