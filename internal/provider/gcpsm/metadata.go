package gcpsm

import (
	"context"
	"encoding/json"
	"fmt"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"

	"github.com/keyferry/keyferry/internal/provider"
)

// metadata reads a secret's labels and annotations (remoteRef.metadataPolicy
// Fetch) with GetSecret, which never returns a payload, in ESO's shape:
// {"annotations":{...},"labels":{...}}. A property "labels" or
// "annotations" selects one map (as JSON), "labels.<key>" one entry;
// dataFrom.extract gives the keys annotations and labels. Labels belong to
// the secret, not to a version, so ref.Version is not used.
func (c *Client) metadata(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	if err := checkName("key", ref.Key); err != nil {
		return provider.Value{}, err
	}
	s, err := c.sm.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: c.secretName(ref.Key)}, readRetry())
	if err != nil {
		return provider.Value{}, fmt.Errorf("reading the labels of secret %q: %w", ref.Key, mapError(err))
	}
	fields := map[string][]byte{}
	for name, m := range map[string]map[string]string{"annotations": s.GetAnnotations(), "labels": s.GetLabels()} {
		b, err := json.Marshal(m)
		if err != nil {
			return provider.Value{}, fmt.Errorf("%w: encoding the %s of secret %q", provider.ErrBadResponse, name, ref.Key)
		}
		fields[name] = b
	}
	data, err := json.Marshal(map[string]map[string]string{"annotations": s.GetAnnotations(), "labels": s.GetLabels()})
	if err != nil {
		return provider.Value{}, fmt.Errorf("%w: encoding the metadata of secret %q", provider.ErrBadResponse, ref.Key)
	}
	return provider.Value{Data: data, Fields: fields}, nil
}
