package azurekv

import (
	"context"
	"time"

	"github.com/keyferry/keyferry/internal/provider"
)

// Names of the attributes ESO adds to an object's tags when it fetches its
// metadata (providers/v1/azure/keyvault, getSecretAllMetadata).
const (
	attributeExpires   = "attribute.expires"
	attributeCreated   = "attribute.created"
	attributeUpdated   = "attribute.updated"
	attributeNotBefore = "attribute.notBefore"
)

// metadata reads the tags of a secret, certificate or key version
// (remoteRef.metadataPolicy Fetch), as ESO does: the object's tags plus its
// expires, created, updated and notBefore attributes (RFC 3339, UTC) under
// the names attribute.expires, ..., as a JSON object of strings with one
// field per entry. The value itself is not part of it.
func (c *Client) metadata(ctx context.Context, objectType, name, version string) (provider.Value, error) {
	what := "fetching the tags of " + describe(objectType, name, version)
	var (
		tags                                 map[string]*string
		expires, created, updated, notBefore *time.Time
	)
	switch objectType {
	case objectCert:
		resp, err := c.certs.GetCertificate(ctx, name, version, nil)
		if err != nil {
			return provider.Value{}, mapError(err, what)
		}
		tags = resp.Tags
		if a := resp.Attributes; a != nil {
			expires, created, updated, notBefore = a.Expires, a.Created, a.Updated, a.NotBefore
		}
	case objectKey:
		resp, err := c.keys.GetKey(ctx, name, version, nil)
		if err != nil {
			return provider.Value{}, mapError(err, what)
		}
		tags = resp.Tags
		if a := resp.Attributes; a != nil {
			expires, created, updated, notBefore = a.Expires, a.Created, a.Updated, a.NotBefore
		}
	default:
		// Key Vault has no call that reads a secret's tags without its
		// value; the value is dropped here.
		resp, err := c.secrets.GetSecret(ctx, name, version, nil)
		if err != nil {
			return provider.Value{}, mapError(err, what)
		}
		tags = resp.Tags
		if a := resp.Attributes; a != nil {
			expires, created, updated, notBefore = a.Expires, a.Created, a.Updated, a.NotBefore
		}
	}
	m := make(map[string]string, len(tags)+4)
	for k, v := range tags {
		if v != nil {
			m[k] = *v
		}
	}
	for k, t := range map[string]*time.Time{attributeExpires: expires, attributeCreated: created, attributeUpdated: updated, attributeNotBefore: notBefore} {
		if t != nil {
			m[k] = t.UTC().Format(time.RFC3339)
		}
	}
	return provider.MetadataValue(m)
}
