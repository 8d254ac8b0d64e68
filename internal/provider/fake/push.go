package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/keyferry/keyferry/internal/provider"
)

var _ provider.Pusher = (*client)(nil)

// Inspect reports the state of an entry: entries from the store's spec
// exist but are not managed; entries pushed are, with a version counting
// their pushes.
func (c *client) Inspect(_ context.Context, ref provider.PushRef) (provider.RemoteState, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state(ref), nil
}

func (c *client) state(ref provider.PushRef) provider.RemoteState {
	v, ok := c.values[provider.Ref{Key: ref.RemoteKey}]
	if !ok {
		return provider.RemoteState{}
	}
	n, managed := c.pushed[ref.RemoteKey]
	st := provider.RemoteState{Exists: true, Managed: managed, Version: strconv.Itoa(n)}
	if ref.Property != "" {
		var m map[string]json.RawMessage
		if json.Unmarshal(v, &m) == nil {
			_, st.PropertyExists = m[ref.Property]
		}
	}
	return st
}

// Push writes the value in memory. With a property, the entry is a JSON
// object and the property one of its string fields; the whole Secret is
// its keys as a JSON object of strings.
func (c *client) Push(_ context.Context, ref provider.PushRef, v provider.PushValue, want provider.RemoteState) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.state(ref)
	if cur.Exists != want.Exists || cur.Version != want.Version {
		return false, fmt.Errorf("pushing %s: %w", ref, provider.ErrConflict)
	}
	if cur.Exists && !cur.Managed {
		return false, fmt.Errorf("pushing %s: %w", ref, provider.ErrNotManaged)
	}
	value := v.Value
	if v.Whole() {
		b, err := stringsJSON(v.Secret)
		if err != nil {
			return false, fmt.Errorf("pushing %s: %w", ref, err)
		}
		value = b
	}
	key := provider.Ref{Key: ref.RemoteKey}
	old := c.values[key]
	if ref.Property != "" {
		m := map[string]any{}
		if cur.Exists {
			if err := json.Unmarshal(old, &m); err != nil {
				return false, fmt.Errorf("pushing %s: %w: the entry is not a JSON object", ref, provider.ErrBadResponse)
			}
		}
		m[ref.Property] = string(value)
		b, err := json.Marshal(m)
		if err != nil {
			return false, fmt.Errorf("pushing %s: the entry cannot be encoded as JSON", ref)
		}
		value = b
	}
	if cur.Exists && string(old) == string(value) {
		return false, nil
	}
	c.values[key] = slices.Clone(value)
	if !cur.Exists {
		c.order = append(c.order, ref.RemoteKey)
	}
	c.pushed[ref.RemoteKey]++
	return true, nil
}

// Delete removes a pushed entry, or one property of it; entries from the
// spec are never deleted.
func (c *client) Delete(_ context.Context, ref provider.PushRef, _ provider.RemoteState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.state(ref)
	if !cur.Exists || !cur.Managed {
		return nil
	}
	key := provider.Ref{Key: ref.RemoteKey}
	if ref.Property != "" {
		if !cur.PropertyExists {
			return nil
		}
		m := map[string]any{}
		_ = json.Unmarshal(c.values[key], &m)
		delete(m, ref.Property)
		if len(m) > 0 {
			b, _ := json.Marshal(m)
			c.values[key] = b
			c.pushed[ref.RemoteKey]++
			return nil
		}
	}
	delete(c.values, key)
	delete(c.pushed, ref.RemoteKey)
	c.order = slices.DeleteFunc(c.order, func(k string) bool { return k == ref.RemoteKey })
	return nil
}

// stringsJSON encodes a Secret's data as a JSON object of strings, as ESO
// pushes a whole Secret.
func stringsJSON(data map[string][]byte) ([]byte, error) {
	m := make(map[string]string, len(data))
	for _, k := range slices.Sorted(maps.Keys(data)) {
		m[k] = string(data[k])
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("the Secret cannot be encoded as JSON")
	}
	return b, nil
}
