package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/provider"
)

// lastApplied is the annotation kubectl apply leaves on an object: for a
// Secret it holds the Secret's data, so metadata never includes it.
const lastApplied = corev1.LastAppliedConfigAnnotation

// metadata reads the labels and annotations of the Secret named ref.Key
// (remoteRef.metadataPolicy Fetch), in ESO's shape:
// {"annotations":{...},"labels":{...}} (null when the Secret has none).
// A property selects "labels" or "annotations" (as JSON) or one entry
// ("labels.app"); dataFrom.extract gives the keys labels and annotations.
// The Secret's data is never part of it, nor is kubectl's
// last-applied-configuration annotation, which holds the data.
func (c *Client) metadata(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	if ref.Version != "" {
		return provider.Value{}, fmt.Errorf("%w: secret %q: Kubernetes Secrets have no versions; remove remoteRef.version", provider.ErrNotSupported, ref.Key)
	}
	s, err := c.secrets.Get(ctx, ref.Key, metav1.GetOptions{})
	if err != nil {
		return provider.Value{}, apiError(fmt.Sprintf("getting the metadata of secret %q from namespace %q (%s)", ref.Key, c.namespace, c.who), err)
	}
	return metadataValue(s)
}

func metadataValue(s *corev1.Secret) (provider.Value, error) {
	annotations := s.Annotations
	if _, ok := annotations[lastApplied]; ok {
		annotations = maps.Clone(annotations)
		delete(annotations, lastApplied)
	}
	fields := map[string][]byte{}
	for name, m := range map[string]map[string]string{"labels": s.Labels, "annotations": annotations} {
		b, err := encodeJSON(m)
		if err != nil {
			return provider.Value{}, fmt.Errorf("%w: encoding the %s of secret %q", provider.ErrBadResponse, name, s.Name)
		}
		fields[name] = b
	}
	data, err := encodeJSON(map[string]map[string]string{"labels": s.Labels, "annotations": annotations})
	if err != nil {
		return provider.Value{}, fmt.Errorf("%w: encoding the metadata of secret %q", provider.ErrBadResponse, s.Name)
	}
	return provider.Value{Data: data, Fields: fields}, nil
}

// encodeJSON encodes v without HTML escaping and without a trailing
// newline, as ESO does.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
