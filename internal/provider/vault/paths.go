package vault

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/keyferry/keyferry/internal/provider"
)

// kvPaths turns the keys users write into Vault API paths for one store.
//
// With a mount (spec.path), a key is relative to it; a key that already
// starts with the mount (and, on KV v2, with "data/" after it) is accepted
// too, as ESO accepts it. Without a mount, the first segment of the key is
// the mount, and on KV v2 "data" is inserted after it unless the key already
// holds a "/data/" segment.
type kvPaths struct {
	// mount is spec.path without surrounding slashes; empty when unset.
	mount string
	v2    bool
}

// relative strips the mount (and "data/" on KV v2) from a key that includes
// them; other keys are returned without leading slashes.
func (p kvPaths) relative(key string) string {
	key = strings.TrimLeft(key, "/")
	if p.mount == "" {
		return key
	}
	if rest, ok := strings.CutPrefix(key, p.mount+"/"); ok {
		key = rest
		if p.v2 {
			key = strings.TrimPrefix(key, "data/")
		}
	}
	return key
}

// data is the path that reads key.
func (p kvPaths) data(key string) string {
	return p.under("data", key)
}

// metadata is the KV v2 metadata path of key (its custom_metadata, and the
// path that lists the keys below it).
func (p kvPaths) metadata(key string) string {
	return p.under("metadata", key)
}

// list is the path that lists the keys below folder.
func (p kvPaths) list(folder string) string {
	folder = strings.TrimSuffix(p.relative(folder), "/")
	var path string
	if p.v2 {
		path = p.metadata(folder)
	} else {
		path = joinPath(p.mount, folder)
	}
	return strings.TrimSuffix(path, "/") + "/"
}

// under builds mount/<segment>/key on KV v2 (segment is data or metadata)
// and mount/key on KV v1.
func (p kvPaths) under(segment, key string) string {
	if p.mount != "" {
		rel := p.relative(key)
		if !p.v2 {
			return joinPath(p.mount, rel)
		}
		return joinPath(p.mount, segment, rel)
	}
	key = strings.TrimLeft(key, "/")
	if !p.v2 {
		return key
	}
	if strings.Contains(key, "/data/") {
		if segment == "data" {
			return key
		}
		return strings.Replace(key, "/data/", "/"+segment+"/", 1)
	}
	first, rest, _ := strings.Cut(key, "/")
	return joinPath(first, segment, rest)
}

func joinPath(parts ...string) string {
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		if p = strings.Trim(p, "/"); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "/")
}

// valueOf turns the fields of a KV entry into a provider.Value: Data is the
// JSON encoding of the map as Vault returned it (nested values kept, the same
// bytes ESO produces), and each field is its string, or the JSON encoding of
// any other value; a null field is empty.
func valueOf(data map[string]any, version string) (provider.Value, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return provider.Value{}, fmt.Errorf("%w: the entry's fields cannot be encoded as JSON", provider.ErrBadResponse)
	}
	fields := make(map[string][]byte, len(data))
	for k, v := range data {
		switch t := v.(type) {
		case string:
			fields[k] = []byte(t)
		case nil:
			fields[k] = []byte{}
		case json.Number:
			fields[k] = []byte(t.String())
		default:
			b, err := json.Marshal(t)
			if err != nil {
				return provider.Value{}, fmt.Errorf("%w: field %q of the entry cannot be encoded as JSON", provider.ErrBadResponse, k)
			}
			fields[k] = b
		}
	}
	return provider.Value{Data: raw, Fields: fields, Version: version}, nil
}
