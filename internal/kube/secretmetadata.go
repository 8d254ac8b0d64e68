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
// SecretMetadataTransform to its identity, resourceVersion, labels and the
// annotations named in keep. The controllers that must notice changes to
// Secrets they do not write (the ExternalSecret controller's waiting
// objects, the PushSecret controller's sources) share one such cache, so an
// unrelated Secret costs its metadata once.
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
	if err := mgr.Add(c); err != nil {
		return nil, fmt.Errorf("adding the Secret metadata cache: %w", err)
	}
	return c, nil
}

// SecretMetadata is the object a Secret metadata cache lists.
func SecretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// SecretMetadataTransform keeps, of a Secret's metadata, its identity,
// resourceVersion, labels and the annotations named in keep.
func SecretMetadataTransform(keep ...string) toolscache.TransformFunc {
	return func(in any) (any, error) {
		m, ok := in.(*metav1.PartialObjectMetadata)
		if !ok {
			return in, nil
		}
		out := &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta}
		out.Namespace, out.Name, out.UID, out.ResourceVersion, out.Labels = m.Namespace, m.Name, m.UID, m.ResourceVersion, m.Labels
		for _, k := range keep {
			if v, ok := m.Annotations[k]; ok {
				if out.Annotations == nil {
					out.Annotations = map[string]string{}
				}
				out.Annotations[k] = v
			}
		}
		return out, nil
	}
}
