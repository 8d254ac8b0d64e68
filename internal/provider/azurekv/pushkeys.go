package azurekv

import "github.com/keyferry/keyferry/internal/provider"

var _ provider.PushReadKeys = (*Client)(nil)

// ReadKeys returns the remote keys reads use for what a push to ref
// changes: a secret reads as "name" and "secret/name"; importing a
// certificate also writes its managed key and secret, so reads of those
// change too.
func (c *Client) ReadKeys(ref provider.PushRef) []string {
	objectType, name, err := parseKey(ref.RemoteKey)
	if err != nil {
		return nil
	}
	switch objectType {
	case objectKey:
		return []string{objectKey + "/" + name}
	case objectCert:
		return []string{objectCert + "/" + name, objectKey + "/" + name, objectSecret + "/" + name, name}
	default:
		return []string{name, objectSecret + "/" + name}
	}
}
