package kube

import (
	"fmt"
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// NewSecretMetadataCache starts, with mgr, a cache of the metadata of every
// Secret (of namespace only, when set), each reduced by
// SecretMetadataTransform to its namespace, name, resourceVersion, labels
// and the annotations named in keep. The controllers that must notice changes to
// Secrets they do not write (the ExternalSecret controller's waiting
// objects, the PushSecret controller's sources) share one such cache, so an
// unrelated Secret costs its metadata once. Its informers tell their
// handlers of changes only, not of the Secrets of their initial list
// (changesOnly).
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

// SecretMetadataTransform keeps, of a Secret's metadata, its namespace,
// name, resourceVersion, labels and the annotations named in keep: what
// the watches that wake controllers read. The namespace string is shared by
// every Secret of a namespace.
//
// The transform is idempotent and returns an object it has already reduced
// as is: an informer applies it twice to every object of its initial
// stream (in the reflector's temporary store, then when its queue takes the
// whole list), and a second copy of each of tens of thousands of Secrets
// would otherwise be held, beside the first, at the start-up's peak.
func SecretMetadataTransform(keep ...string) toolscache.TransformFunc {
	return func(in any) (any, error) {
		m, ok := in.(*metav1.PartialObjectMetadata)
		if !ok {
			return in, nil
		}
		if reduced(m, keep) {
			return m, nil
		}
		out := &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta}
		out.Namespace = Intern(m.Namespace)
		out.Name, out.ResourceVersion, out.Labels = m.Name, m.ResourceVersion, m.Labels
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

// reduced reports whether m holds nothing SecretMetadataTransform drops: no
// metadata but its namespace, name, resourceVersion, labels and, if any,
// annotations named in keep.
func reduced(m *metav1.PartialObjectMetadata, keep []string) bool {
	if m.Annotations != nil && len(m.Annotations) == 0 {
		return false
	}
	for k := range m.Annotations {
		if !slices.Contains(keep, k) {
			return false
		}
	}
	rest := m.ObjectMeta
	rest.Namespace, rest.Name, rest.ResourceVersion, rest.Labels, rest.Annotations = "", "", "", nil, nil
	return reflect.ValueOf(rest).IsZero()
}
