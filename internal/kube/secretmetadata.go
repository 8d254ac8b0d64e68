package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// NewSecretMetadataCache starts, with mgr, a cache of the metadata of every
// Secret (of namespace only, when set), each reduced by
// SecretMetadataTransform to a SecretRef (namespace, name, resourceVersion,
// labels and the annotations named in keep). The controllers that must
// notice changes to Secrets they do not write (the ExternalSecret
// controller's waiting objects, the PushSecret controller's sources) share
// one such cache, so an unrelated Secret costs its metadata once, and
// nothing until one of them starts its watch (DeferredSource). Its
// informers tell their handlers of changes only, not of the Secrets of
// their initial list (changesOnly). Its objects are SecretRefs, for event
// handlers: a Get or List of PartialObjectMetadata from it fails.
func NewSecretMetadataCache(mgr ctrl.Manager, namespace string, keep ...string) (cache.Cache, error) {
	opts := cache.Options{
		HTTPClient:                  mgr.GetHTTPClient(),
		Scheme:                      mgr.GetScheme(),
		Mapper:                      mgr.GetRESTMapper(),
		DefaultTransform:            SecretMetadataTransform(keep...),
		ReaderFailOnMissingInformer: true,
	}
	if namespace != "" {
		opts.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	c, err := cache.New(mgr.GetConfig(), opts)
	if err != nil {
		return nil, fmt.Errorf("creating the Secret metadata cache: %w", err)
	}
	c = SyncPromptly(c)
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("adding the Secret metadata cache: %w", err)
	}
	return changesOnly{c}, nil
}

// SecretMetadata is the object a Secret metadata cache lists.
func SecretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// SecretMetadataTransform reduces each Secret's metadata to a SecretRef:
// its namespace, name, resourceVersion, labels and the annotations named in
// keep, what the watches that wake controllers read.
//
// The transform is idempotent and returns a SecretRef as it is: an
// informer applies it twice to every object of its initial stream (in the
// reflector's temporary store, then when its queue takes the whole list),
// and a second copy of each of tens of thousands of Secrets would otherwise
// be held, beside the first, at the start-up's peak.
func SecretMetadataTransform(keep ...string) toolscache.TransformFunc {
	return func(in any) (any, error) {
		m, ok := in.(*metav1.PartialObjectMetadata)
		if !ok {
			return in, nil
		}
		return NewSecretRef(m, keep...), nil
	}
}
