package vault

// This file is the metadata of a push to Vault: ESO's PushSecretMetadata
// (data[].metadata, dataTo[].metadata) with the Vault spec of ESO's pull
// request #6589 (external-secrets/external-secrets, "support custom metadata
// with merge policies in PushSecret (KV v2 only)"):
//
//	apiVersion: kubernetes.external-secrets.io/v1alpha1
//	kind: PushSecretMetadata
//	spec:
//	  customMetadata: {...}  # written to the entry's KV v2 custom_metadata
//	  mergePolicy: Merge     # default: keep the entry's other custom_metadata
//	                         # Replace: custom_metadata becomes customMetadata
//
// ESO v2.9.0's Vault provider ignores data[].metadata altogether, and the
// pull request ignores it on KV v1; keyferry refuses it on KV v1 (KV v1 has
// no metadata to write it to) rather than push without it. The managed-by
// mark keyferry (like ESO) keeps in custom_metadata is always kept, whatever
// the merge policy, and customMetadata cannot set it. Keys and values must
// fit Vault's limits for custom_metadata (64 pairs with the mark, keys up to
// 128 bytes and values up to 512, printable), checked before anything is
// written.
//
// Field names are matched exactly (ESO's decoder would also take
// "CustomMetadata"; keyferry refuses it as unknown), and so are apiVersion
// and kind. Errors name the field, never a value.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/keyferry/keyferry/internal/provider"
)

var _ provider.MetadataPusher = (*client)(nil)

// The mergePolicy values: Merge (the default) keeps the entry's other
// custom_metadata; Replace drops it.
const (
	mergePolicyMerge   = "Merge"
	mergePolicyReplace = "Replace"
)

// Vault's limits on a KV v2 entry's custom_metadata.
const (
	maxCustomMetadataKeys        = 64
	maxCustomMetadataKeyLength   = 128
	maxCustomMetadataValueLength = 512
)

// pushMetadata is the spec of a parsed PushSecretMetadata for Vault.
type pushMetadata struct {
	CustomMetadata map[string]string
	MergePolicy    string
}

// CheckPushMetadata implements provider.MetadataPusher: raw must be the
// PushSecretMetadata for Vault, and the store a KV v2 one.
func (c *client) CheckPushMetadata(raw []byte) error {
	_, err := c.pushMetadataOf(raw)
	return err
}

// pushMetadataOf parses a push's metadata for this store: nil without
// metadata, refused on KV v1.
func (c *client) pushMetadataOf(raw []byte) (*pushMetadata, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	m, err := parsePushMetadata(raw)
	if err != nil {
		return nil, err
	}
	if !c.paths.v2 {
		return nil, fmt.Errorf("%w: metadata: the store's KV v1 engine has no custom_metadata to write it to (ESO ignores it there); remove it or push to a KV v2 store", provider.ErrInvalidPush)
	}
	return &m, nil
}

// parsePushMetadata parses a push's metadata as written (JSON) into its
// spec. Each refusal wraps provider.ErrInvalidPush and names the field.
func parsePushMetadata(raw []byte) (pushMetadata, error) {
	var m pushMetadata
	if err := provider.DecodePushMetadata(raw, "for Vault",
		provider.PushMetadataField{Name: "customMetadata", Into: &m.CustomMetadata, What: "an object of strings"},
		provider.PushMetadataField{Name: "mergePolicy", Into: &m.MergePolicy, What: "a string"},
	); err != nil {
		return m, err
	}
	for _, check := range pushMetadataChecks {
		if err := check(m); err != nil {
			return m, fmt.Errorf("%w: %w", provider.ErrInvalidPush, err)
		}
	}
	return m, nil
}

// pushMetadataChecks are the rules a parsed spec must follow, in order;
// each names the field it refuses.
var pushMetadataChecks = []func(pushMetadata) error{
	mergePolicyIsKnown,
	managedByIsNotCustomMetadata,
	customMetadataFitsVault,
}

// mergePolicyIsKnown: Merge, Replace or unset (Merge).
func mergePolicyIsKnown(m pushMetadata) error {
	switch m.MergePolicy {
	case "", mergePolicyMerge, mergePolicyReplace:
		return nil
	}
	return fmt.Errorf("metadata.spec.mergePolicy must be %s or %s", mergePolicyMerge, mergePolicyReplace)
}

// managedByIsNotCustomMetadata: managed-by is keyferry's (ESO's) mark,
// which it sets on every entry it pushes and must stay.
func managedByIsNotCustomMetadata(m pushMetadata) error {
	if _, ok := m.CustomMetadata[provider.ManagedByKey]; ok {
		return fmt.Errorf("metadata.spec.customMetadata cannot set %s: it is the mark keyferry keeps on every entry it pushes; remove it", provider.ManagedByKey)
	}
	return nil
}

// customMetadataFitsVault: Vault's limits, so that a push is refused
// before anything is written rather than half done. Keys are named (they
// are names, like a Secret's keys); values never.
func customMetadataFitsVault(m pushMetadata) error {
	if len(m.CustomMetadata) > maxCustomMetadataKeys-1 {
		return fmt.Errorf("metadata.spec.customMetadata has %d keys; Vault keeps at most %d, one of them keyferry's %s mark", len(m.CustomMetadata), maxCustomMetadataKeys, provider.ManagedByKey)
	}
	for _, k := range slices.Sorted(maps.Keys(m.CustomMetadata)) {
		switch {
		case k == "":
			return errors.New("metadata.spec.customMetadata has an empty key")
		case !printable(k):
			return errors.New("metadata.spec.customMetadata has a key with unprintable characters")
		case len(k) > maxCustomMetadataKeyLength:
			return fmt.Errorf("metadata.spec.customMetadata has a key of %d bytes; Vault takes at most %d", len(k), maxCustomMetadataKeyLength)
		case len(m.CustomMetadata[k]) > maxCustomMetadataValueLength:
			return fmt.Errorf("metadata.spec.customMetadata.%s is %d bytes long; Vault takes at most %d", k, len(m.CustomMetadata[k]), maxCustomMetadataValueLength)
		case !printable(m.CustomMetadata[k]):
			return fmt.Errorf("metadata.spec.customMetadata.%s has unprintable characters", k)
		}
	}
	return nil
}

// printable says whether s is valid UTF-8 of printable characters only,
// as Vault requires of custom_metadata.
func printable(s string) bool {
	return strings.ToValidUTF8(s, "\uFFFD") == s && !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) })
}

// wantCustomMetadata is what an entry's custom_metadata becomes on a push
// with metadata m: m's customMetadata, with Merge over the entry's current
// custom_metadata, and always keyferry's managed-by mark.
func wantCustomMetadata(m *pushMetadata, current map[string]string) map[string]string {
	out := map[string]string{}
	if m == nil || m.MergePolicy != mergePolicyReplace {
		maps.Copy(out, current)
	}
	if m != nil {
		maps.Copy(out, m.CustomMetadata)
	}
	out[provider.ManagedByKey] = provider.ManagedByValue
	return out
}

// syncCustomMetadata makes the custom_metadata of the KV v2 entry key what
// m asks (wantCustomMetadata) and says whether it wrote. version, when
// set, is the entry's version the push saw: an entry changed since, or no
// longer carrying keyferry's mark, is not written.
func (c *client) syncCustomMetadata(ctx context.Context, key string, m *pushMetadata, version string) (bool, error) {
	path := c.paths.metadata(key)
	op := "writing the custom_metadata of " + path
	sec, err := c.read(ctx, "reading "+path, path, nil)
	if errors.Is(err, provider.ErrNotFound) || err == nil && (sec == nil || sec.Data == nil) {
		return false, fmt.Errorf("%s: %w (deleted)", op, provider.ErrConflict)
	}
	if err != nil {
		return false, err
	}
	current := map[string]string{}
	raw, _ := sec.Data["custom_metadata"].(map[string]any)
	for k, v := range raw {
		current[k] = fmt.Sprint(v)
	}
	if current[provider.ManagedByKey] != provider.ManagedByValue {
		return false, fmt.Errorf("%s: %w", op, provider.ErrNotManaged)
	}
	if version != "" && fmt.Sprint(sec.Data["current_version"]) != version {
		return false, fmt.Errorf("%s: %w", op, provider.ErrConflict)
	}
	want := wantCustomMetadata(m, current)
	if maps.Equal(want, current) {
		return false, nil
	}
	if err := c.write(ctx, op, path, map[string]any{"custom_metadata": want}); err != nil {
		return false, err
	}
	return true, nil
}
