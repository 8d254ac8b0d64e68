package pushsecret

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/provider"
)

// namespacedSources is the provider.PushSources of one PushSecret: it reads
// the ConfigMaps and Secrets its metadata references (ESO's AWS
// resourcePolicy.policySourceRef) in the PushSecret's namespace only, with
// the uncached reader, so a store's client (which may be shared between
// namespaces) never resolves a reference in another namespace.
type namespacedSources struct {
	reader    client.Reader
	namespace string
}

var _ provider.PushSources = namespacedSources{}

// ReadKey reads key of the ConfigMap (data, then binaryData) or Secret
// name. A missing object or key wraps provider.ErrInvalidPush; errors never
// quote the data.
func (s namespacedSources) ReadKey(ctx context.Context, kind, name, key string) ([]byte, error) {
	nn := types.NamespacedName{Namespace: s.namespace, Name: name}
	var (
		data  []byte
		found bool
		err   error
	)
	switch kind {
	case "ConfigMap":
		var cm corev1.ConfigMap
		if err = s.reader.Get(ctx, nn, &cm); err == nil {
			var str string
			if str, found = cm.Data[key]; found {
				data = []byte(str)
			} else {
				data, found = cm.BinaryData[key]
			}
		}
	case "Secret":
		var sec corev1.Secret
		if err = s.reader.Get(ctx, nn, &sec); err == nil {
			data, found = sec.Data[key]
		}
	default:
		return nil, fmt.Errorf("%w: kind %q cannot be referenced (ConfigMap or Secret)", provider.ErrInvalidPush, kind)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%w: %s %q does not exist in namespace %q", provider.ErrInvalidPush, kind, name, s.namespace)
	case err != nil:
		return nil, fmt.Errorf("reading %s %s/%s: %w", kind, s.namespace, name, err)
	case !found:
		return nil, fmt.Errorf("%w: %s %s/%s has no key %q", provider.ErrInvalidPush, kind, s.namespace, name, key)
	}
	return data, nil
}
