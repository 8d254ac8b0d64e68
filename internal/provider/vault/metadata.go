package vault

import (
	"context"
	"fmt"

	"github.com/keyferry/keyferry/internal/provider"
)

// systemMetadata are the KV v2 metadata fields ESO returns next to
// custom_metadata (docs/provider/hashicorp-vault.md, "metadataPolicy").
var systemMetadata = []string{"created_time", "current_version", "delete_version_after"}

// metadata reads a KV v2 entry's metadata (remoteRef.metadataPolicy Fetch),
// as ESO does: its custom_metadata, plus created_time, current_version and
// delete_version_after, all as strings; a custom_metadata entry of the same
// name wins. It reads the metadata path only, never the entry's data, and
// has no versions (ref.Version is not used). KV v1 has no metadata.
func (c *client) metadata(ctx context.Context, ref provider.Ref) (provider.Value, error) {
	if !c.paths.v2 {
		return provider.Value{}, provider.RefuseMetadata(ref, "KV v1 keeps no metadata (custom_metadata needs KV v2)")
	}
	path := c.paths.metadata(ref.Key)
	sec, err := c.read(ctx, "reading "+path, path, nil)
	if err != nil {
		return provider.Value{}, err
	}
	if sec.Data == nil {
		return provider.Value{}, fmt.Errorf("reading %s: %w", path, provider.ErrNotFound)
	}
	m := map[string]string{}
	for _, k := range systemMetadata {
		if v, ok := sec.Data[k]; ok && v != nil {
			m[k] = fmt.Sprint(v)
		}
	}
	if custom, ok := sec.Data["custom_metadata"].(map[string]any); ok {
		for k, v := range custom {
			if v != nil {
				m[k] = fmt.Sprint(v)
			}
		}
	}
	return provider.MetadataValue(m)
}
