package provider

import (
	"encoding/json"
	"fmt"
)

// ErrMetadataNotSupported: a ref asks for metadata (Ref.Metadata, ESO's
// remoteRef.metadataPolicy Fetch) from a provider, or a configuration of
// one, that has none. It wraps ErrNotSupported.
var ErrMetadataNotSupported = fmt.Errorf("%w: remoteRef.metadataPolicy Fetch", ErrNotSupported)

// RefuseMetadata is the error of a provider without metadata for a ref that
// asks for it. why says what the provider lacks; the error names the key,
// never a value.
func RefuseMetadata(ref Ref, why string) error {
	return fmt.Errorf("%w: %s, so %q has no metadata to read; remove metadataPolicy (or set it to None) to read the value",
		ErrMetadataNotSupported, why, ref.Key)
}

// MetadataValue is the Value of a flat metadata map (tags, custom
// metadata): Data is the map as a JSON object of strings, as ESO writes
// it without a property, and Fields holds each entry exactly, so a property
// selects one entry by its name even when the name holds dots, and
// dataFrom.extract gives one Secret key per entry.
func MetadataValue(m map[string]string) (Value, error) {
	if m == nil {
		m = map[string]string{}
	}
	data, err := json.Marshal(m)
	if err != nil {
		return Value{}, fmt.Errorf("%w: encoding metadata as JSON: %v", ErrBadResponse, err)
	}
	fields := make(map[string][]byte, len(m))
	for k, v := range m {
		fields[k] = []byte(v)
	}
	return Value{Data: data, Fields: fields}, nil
}
