package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// ESO's PushSecretMetadata envelope: every provider's data[].metadata is
//
//	apiVersion: kubernetes.external-secrets.io/v1alpha1
//	kind: PushSecretMetadata
//	spec: {...}   # the provider's fields
const (
	PushMetadataAPIVersion = "kubernetes.external-secrets.io/v1alpha1"
	PushMetadataKind       = "PushSecretMetadata"
)

// PushMetadataField is one field of a PushSecretMetadata spec: its name as
// ESO writes it (matched exactly), where it is decoded, and what it must
// be, for the message of a value that does not decode ("a string").
type PushMetadataField struct {
	Name string
	Into any
	What string
}

// DecodePushMetadata parses raw, a push's metadata as written (JSON), as
// ESO's PushSecretMetadata and decodes the fields of its spec into fields.
// forWhat names the provider in the message of an unknown field ("for
// Vault"). A missing spec or field leaves its target as it is. Every
// refusal wraps ErrInvalidPush and names the field; the decoder's own
// errors are never kept, as they may quote the value.
func DecodePushMetadata(raw []byte, forWhat string, fields ...PushMetadataField) error {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	top, err := pushMetadataFields(raw, "metadata", forWhat, "apiVersion", "kind", "spec")
	if err != nil {
		return err
	}
	for _, f := range []struct{ name, want string }{
		{"apiVersion", PushMetadataAPIVersion},
		{"kind", PushMetadataKind},
	} {
		var got string
		if json.Unmarshal(top[f.name], &got) != nil || got != f.want {
			return fmt.Errorf("%w: metadata.%s must be %q", ErrInvalidPush, f.name, f.want)
		}
	}
	spec, err := pushMetadataFields(top["spec"], "metadata.spec", forWhat, names...)
	if err != nil {
		return err
	}
	for _, f := range fields {
		b, ok := spec[f.Name]
		if !ok {
			continue
		}
		if json.Unmarshal(b, f.Into) != nil {
			return fmt.Errorf("%w: metadata.spec.%s must be %s", ErrInvalidPush, f.Name, f.What)
		}
	}
	return nil
}

// pushMetadataFields splits a JSON object into its fields, refusing
// anything else and any field not in known (matched exactly). Absent or
// null: no fields.
func pushMetadataFields(raw []byte, name, forWhat string, known ...string) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]json.RawMessage{}, nil
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return nil, fmt.Errorf("%w: %s must be an object", ErrInvalidPush, name)
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(known, k) {
			return nil, fmt.Errorf("%w: %s has an unknown field %q; ESO's PushSecretMetadata %s has %v",
				ErrInvalidPush, name, k, forWhat, known)
		}
	}
	return fields, nil
}
