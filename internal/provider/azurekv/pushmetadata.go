package azurekv

// This file reads a push's metadata (PushSecret data[].metadata), ESO's
// PushSecretMetadata for Azure Key Vault (providers/v1/azure/keyvault,
// PushSecretMetadataSpec):
//
//	apiVersion: kubernetes.external-secrets.io/v1alpha1
//	kind: PushSecretMetadata
//	spec:
//	  expirationDate: "2024-12-31T23:59:59Z" # RFC 3339: the secret's expires attribute
//	  contentType: application/json         # the secret's content type
//	  tags: {environment: production}       # the object's tags
//
// As ESO, field names match case-insensitively (ESO decodes with Go's JSON
// decoder), a field that is not one of these is refused, an empty
// expirationDate or contentType is as if absent, and a managed-by tag is
// refused (keyferry sets it, as ESO). keyferry also refuses tags Key Vault
// would refuse (more than 15 per object counting managed-by, names longer
// than 512 characters, values longer than 256), so the PushSecret says
// which field to fix instead of failing at the vault. Every refusal wraps
// provider.ErrInvalidPush and names the field, never its value.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyferry/keyferry/internal/provider"
)

// ESO's PushSecretMetadata object (runtime/esutils/metadata).
const (
	pushMetadataAPIVersion = "kubernetes.external-secrets.io/v1alpha1"
	pushMetadataKind       = "PushSecretMetadata"
)

// Key Vault's limits on an object's tags.
const (
	maxTags        = 15
	maxTagNameLen  = 512
	maxTagValueLen = 256
)

var _ provider.MetadataPusher = (*Client)(nil)

// pushMetadata is a parsed PushSecretMetadata spec. The zero value is a
// push without metadata.
type pushMetadata struct {
	// expires is spec.expirationDate: the pushed secret version's expires
	// attribute; nil: the version expires never.
	expires *time.Time
	// contentType is spec.contentType; nil: the secret's current content
	// type is kept.
	contentType *string
	// tags is spec.tags; nil: not given (the current tags are kept).
	tags map[string]string
}

// secretOnly names the fields set that Key Vault applies only to a secret
// (ESO applies them only there).
func (m pushMetadata) secretOnly() []string {
	var fields []string
	if m.expires != nil {
		fields = append(fields, "spec.expirationDate")
	}
	if m.contentType != nil {
		fields = append(fields, "spec.contentType")
	}
	return fields
}

// CheckPushMetadata implements provider.MetadataPusher: raw must be ESO's
// PushSecretMetadata for Azure Key Vault (see the file's comment).
func (c *Client) CheckPushMetadata(raw []byte) error {
	_, err := parsePushMetadata(raw)
	return err
}

// metadataError is a refusal of the metadata naming field.
func metadataError(field, format string, args ...any) error {
	return fmt.Errorf("%w: metadata.%s %s", provider.ErrInvalidPush, field, fmt.Sprintf(format, args...))
}

// parsePushMetadata parses raw (JSON, as the API server stores it); empty
// or null raw is no metadata. Decoder errors are never kept: they may
// quote the input.
func parsePushMetadata(raw []byte) (pushMetadata, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return pushMetadata{}, nil
	}
	top, err := fieldsOf(raw, "", "apiVersion", "kind", "spec")
	if err != nil {
		return pushMetadata{}, err
	}
	if err := checkHeader(top); err != nil {
		return pushMetadata{}, err
	}
	var md pushMetadata
	spec := top["spec"]
	if len(spec) == 0 || string(spec) == "null" {
		return md, nil
	}
	fields, err := fieldsOf(spec, "spec", "expirationDate", "contentType", "tags")
	if err != nil {
		return pushMetadata{}, err
	}
	for _, step := range []func(map[string]json.RawMessage, *pushMetadata) error{
		parseExpirationDate,
		parseContentType,
		parseTags,
	} {
		if err := step(fields, &md); err != nil {
			return pushMetadata{}, err
		}
	}
	return md, nil
}

// fieldsOf splits the JSON object raw into its fields, keyed by the name
// in known each matches (case-insensitively, as Go's JSON decoder and so
// ESO match them). A field not in known is refused, and so is a field
// given twice in different cases (which ESO would resolve by document
// order). path is raw's place in the metadata ("" at the top).
func fieldsOf(raw json.RawMessage, path string, known ...string) (map[string]json.RawMessage, error) {
	where := "metadata"
	if path != "" {
		where += "." + path
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(raw, &in); err != nil || in == nil {
		return nil, fmt.Errorf("%w: %s is not a JSON object (ESO's PushSecretMetadata)", provider.ErrInvalidPush, where)
	}
	out := make(map[string]json.RawMessage, len(in))
	for _, name := range slices.Sorted(maps.Keys(in)) {
		i := slices.IndexFunc(known, func(k string) bool { return strings.EqualFold(k, name) })
		if i < 0 {
			return nil, fmt.Errorf("%w: %s.%s is not a field of ESO's PushSecretMetadata for Azure Key Vault (%s)",
				provider.ErrInvalidPush, where, fieldName(name), strings.Join(known, ", "))
		}
		if _, dup := out[known[i]]; dup {
			return nil, fmt.Errorf("%w: %s.%s is given more than once", provider.ErrInvalidPush, where, known[i])
		}
		out[known[i]] = in[name]
	}
	return out, nil
}

// fieldName is an unknown field's name as an error shows it: quoted when
// it is not a plain identifier, cut when long.
func fieldName(name string) string {
	const maxLen = 64
	if len(name) > maxLen {
		cut := maxLen
		for cut > 0 && !utf8.RuneStart(name[cut]) {
			cut--
		}
		name = name[:cut] + "..."
	}
	plain := name != "" && strings.IndexFunc(name, func(r rune) bool {
		return !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	}) < 0
	if plain {
		return name
	}
	return fmt.Sprintf("%q", name)
}

// stringField decodes an optional string field ("" when absent or null).
func stringField(fields map[string]json.RawMessage, name, path string) (string, error) {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", metadataError(path, "must be a string")
	}
	return s, nil
}

// checkHeader: apiVersion and kind are ESO's PushSecretMetadata's.
func checkHeader(top map[string]json.RawMessage) error {
	apiVersion, err := stringField(top, "apiVersion", "apiVersion")
	if err != nil {
		return err
	}
	if apiVersion != pushMetadataAPIVersion {
		return metadataError("apiVersion", "must be %s", pushMetadataAPIVersion)
	}
	kind, err := stringField(top, "kind", "kind")
	if err != nil {
		return err
	}
	if kind != pushMetadataKind {
		return metadataError("kind", "must be %s", pushMetadataKind)
	}
	return nil
}

// parseExpirationDate: spec.expirationDate, when set, is an RFC 3339 date
// (as ESO parses it); Key Vault keeps it to the second.
func parseExpirationDate(fields map[string]json.RawMessage, md *pushMetadata) error {
	s, err := stringField(fields, "expirationDate", "spec.expirationDate")
	if err != nil || s == "" {
		return err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return metadataError("spec.expirationDate", "is not an RFC 3339 date and time (like 2024-12-31T23:59:59Z)")
	}
	t = t.UTC().Truncate(time.Second)
	md.expires = &t
	return nil
}

// parseContentType: spec.contentType, when set, is the secret's content
// type; empty keeps the current one (ESO: "don't change", never "clear").
func parseContentType(fields map[string]json.RawMessage, md *pushMetadata) error {
	s, err := stringField(fields, "contentType", "spec.contentType")
	if err != nil || s == "" {
		return err
	}
	md.contentType = &s
	return nil
}

// parseTags: spec.tags is an object of strings without managed-by, within
// Key Vault's limits.
func parseTags(fields map[string]json.RawMessage, md *pushMetadata) error {
	raw, ok := fields["tags"]
	if !ok || string(raw) == "null" {
		return nil
	}
	var tags map[string]string
	if err := json.Unmarshal(raw, &tags); err != nil {
		return metadataError("spec.tags", "must be an object of strings")
	}
	if tags == nil {
		return metadataError("spec.tags", "must be an object of strings")
	}
	if _, ok := tags[provider.ManagedByKey]; ok {
		return metadataError("spec.tags", "must not set the %s tag: keyferry sets it (as ESO) to mark what it pushed", provider.ManagedByKey)
	}
	if len(tags) > maxTags-1 {
		return metadataError("spec.tags", "has %d tags; Key Vault keeps at most %d per object, one of them keyferry's %s tag", len(tags), maxTags, provider.ManagedByKey)
	}
	for _, name := range slices.Sorted(maps.Keys(tags)) {
		switch {
		case name == "":
			return metadataError("spec.tags", "has a tag with an empty name")
		case utf8.RuneCountInString(name) > maxTagNameLen:
			return metadataError("spec.tags", "has a tag name longer than %d characters, Key Vault's limit", maxTagNameLen)
		case utf8.RuneCountInString(tags[name]) > maxTagValueLen:
			return fmt.Errorf("%w: metadata.spec.tags: tag %s has a value longer than %d characters, Key Vault's limit", provider.ErrInvalidPush, fieldName(name), maxTagValueLen)
		}
	}
	md.tags = tags
	return nil
}
