package operator

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
)

// newInformer builds the cache's informers. Every informer but the
// metadata-only one starts with a paged LIST instead of client-go's
// watch-list stream (on by default since client-go 1.35): with the stream,
// the informer of an empty collection (no SecretSyncs, no
// ClusterSecretStores: the common case) waited about a second for the API
// server's bookmark, twice in a row as controllers start, and the first
// Secret was written 2.3 s after start instead of 0.4 s. The metadata-only
// informer (every Secret in the cluster, for refusals that wait on their
// Secret) keeps the stream, which holds less at once than a LIST of tens of
// thousands of Secrets (docs/performance.md).
func newInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	if _, metadataOnly := obj.(*metav1.PartialObjectMetadata); !metadataOnly {
		if l, ok := lw.(*toolscache.ListWatch); ok {
			lw = listingListWatch{l}
		}
	}
	return toolscache.NewSharedIndexInformer(lw, obj, resync, indexers)
}

// listingListWatch is a ListWatch the reflector lists with (it reports no
// watch-list support).
type listingListWatch struct{ *toolscache.ListWatch }

// IsWatchListSemanticsUnSupported tells client-go's reflector to LIST.
func (listingListWatch) IsWatchListSemanticsUnSupported() bool { return true }
