package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/keyferry/keyferry/internal/provider"
)

// customMetadataField is where KV v1, which has no metadata, keeps ESO's
// managed-by mark: a field of the entry itself, as ESO writes it.
const customMetadataField = "custom_metadata"

var _ provider.Pusher = (*client)(nil)

// Inspect reads the state of a KV entry. On KV v2 the entry exists when its
// metadata does (even with every version deleted, so a soft-deleted entry
// of someone else is not taken for free), is managed when its
// custom_metadata holds managed-by: external-secrets (ESO's mark), and its
// version is current_version, the check-and-set token. On KV v1 the mark is
// the entry's custom_metadata field and there is no version.
func (c *client) Inspect(ctx context.Context, ref provider.PushRef) (provider.RemoteState, error) {
	if !c.paths.v2 {
		data, exists, err := c.readData(ctx, ref.RemoteKey)
		if err != nil || !exists {
			return provider.RemoteState{}, err
		}
		st := provider.RemoteState{Exists: true, Managed: markedV1(data)}
		if ref.Property != "" {
			_, st.PropertyExists = data[ref.Property]
		}
		return st, nil
	}
	path := c.paths.metadata(ref.RemoteKey)
	sec, err := c.read(ctx, "reading "+path, path, nil)
	if errors.Is(err, provider.ErrNotFound) {
		return provider.RemoteState{}, nil
	}
	if err != nil {
		return provider.RemoteState{}, err
	}
	if sec.Data == nil {
		return provider.RemoteState{}, nil
	}
	custom, _ := sec.Data["custom_metadata"].(map[string]any)
	st := provider.RemoteState{
		Exists:  true,
		Managed: fmt.Sprint(custom[provider.ManagedByKey]) == provider.ManagedByValue,
		Version: fmt.Sprint(sec.Data["current_version"]),
	}
	if ref.Property != "" {
		data, _, err := c.readData(ctx, ref.RemoteKey)
		if err != nil {
			return provider.RemoteState{}, err
		}
		_, st.PropertyExists = data[ref.Property]
	}
	return st, nil
}

// Push writes a KV entry with ESO's meaning of remoteRef: without a
// property the pushed value must be a JSON object and becomes the entry's
// fields (the whole Secret is its keys as string fields); with a property,
// the value becomes that one string field, the entry's other fields kept.
// On KV v2 every write is a check-and-set on the version Inspect saw (0:
// only if the entry does not exist yet), and a new entry then gets ESO's
// custom_metadata managed-by mark; an unchanged entry is not written.
// A push's metadata (pushmetadata.go) sets the KV v2 entry's
// custom_metadata beside the mark, also when the fields are unchanged.
func (c *client) Push(ctx context.Context, ref provider.PushRef, v provider.PushValue, want provider.RemoteState) (bool, error) {
	path := c.paths.data(ref.RemoteKey)
	op := "pushing to " + path
	if want.Exists && !want.Managed {
		return false, fmt.Errorf("%s: %w", op, provider.ErrNotManaged)
	}
	meta, err := c.pushMetadataOf(v.Metadata)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	current := map[string]any{}
	version := "0"
	if want.Exists {
		data, exists, ver, err := c.readCurrent(ctx, ref.RemoteKey)
		if err != nil {
			return false, err
		}
		// A KV v2 entry whose current version is deleted reads as missing;
		// the check-and-set on want.Version still guards the write.
		if c.paths.v2 && exists && ver != want.Version || !c.paths.v2 && !exists {
			return false, fmt.Errorf("%s: %w", op, provider.ErrConflict)
		}
		if !c.paths.v2 && !markedV1(data) {
			return false, fmt.Errorf("%s: %w", op, provider.ErrNotManaged)
		}
		if data != nil {
			current = data
		}
		version = want.Version
	}
	next, err := fields(ref, v, current)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if !c.paths.v2 {
		next[customMetadataField] = map[string]any{provider.ManagedByKey: provider.ManagedByValue}
	}
	if want.Exists && sameFields(current, next) {
		if meta == nil {
			return false, nil
		}
		return c.syncCustomMetadata(ctx, ref.RemoteKey, meta, want.Version)
	}
	body := map[string]any(next)
	if c.paths.v2 {
		cas, err := strconv.Atoi(version)
		if err != nil {
			return false, fmt.Errorf("%s: %w: current_version %q is not a number", op, provider.ErrBadResponse, version)
		}
		body = map[string]any{"data": next, "options": map[string]any{"cas": cas}}
	}
	if err := c.write(ctx, op, path, body); err != nil {
		return false, err
	}
	switch {
	case c.paths.v2 && !want.Exists:
		mpath := c.paths.metadata(ref.RemoteKey)
		mark := map[string]any{"custom_metadata": wantCustomMetadata(meta, nil)}
		if err := c.write(ctx, "marking "+mpath+" as pushed by keyferry", mpath, mark); err != nil {
			return true, err
		}
	case meta != nil:
		if _, err := c.syncCustomMetadata(ctx, ref.RemoteKey, meta, ""); err != nil {
			return true, err
		}
	}
	return true, nil
}

// fields computes the entry's fields after the push (see Push).
func fields(ref provider.PushRef, v provider.PushValue, current map[string]any) (map[string]any, error) {
	value := v.Value
	if v.Whole() {
		m := make(map[string]string, len(v.Secret))
		for k, b := range v.Secret {
			m[k] = string(b)
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("%w: the source Secret cannot be encoded as JSON", provider.ErrInvalidPush)
		}
		value = b
	}
	if ref.Property != "" {
		next := maps.Clone(current)
		delete(next, customMetadataField)
		next[ref.Property] = string(value)
		return next, nil
	}
	var next map[string]any
	// The decoder's error is not kept: it may quote the value.
	if err := json.Unmarshal(value, &next); err != nil || next == nil {
		return nil, fmt.Errorf("%w: secretKey %q is not a JSON object; set remoteRef.property to push it as one field", provider.ErrInvalidPush, v.SecretKey)
	}
	if _, ok := next[customMetadataField]; ok {
		return nil, fmt.Errorf("%w: a field named %s cannot be pushed (ESO keeps its mark there on KV v1)", provider.ErrInvalidPush, customMetadataField)
	}
	return next, nil
}

// sameFields compares two entries as Vault keeps them, JSON numbers and
// all, ignoring the KV v1 mark's representation.
func sameFields(a, b map[string]any) bool {
	norm := func(m map[string]any) any {
		raw, _ := json.Marshal(m)
		var out any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// Delete removes what keyferry pushed: the property (rewriting the entry
// with check-and-set), or the whole entry (on KV v2 its metadata and every
// version) when no property is named or it was the last field. An entry
// without ESO's managed-by mark is never touched.
func (c *client) Delete(ctx context.Context, ref provider.PushRef, _ provider.RemoteState) error {
	st, err := c.Inspect(ctx, ref)
	if err != nil || !st.Exists || !st.Managed {
		return err
	}
	path := c.paths.data(ref.RemoteKey)
	if ref.Property != "" {
		if !st.PropertyExists {
			return nil
		}
		data, _, ver, err := c.readCurrent(ctx, ref.RemoteKey)
		if err != nil {
			return err
		}
		delete(data, ref.Property)
		delete(data, customMetadataField)
		if len(data) > 0 {
			body := map[string]any(data)
			if c.paths.v2 {
				if ver != "" && ver != st.Version {
					return fmt.Errorf("deleting property %q of %s: %w", ref.Property, path, provider.ErrConflict)
				}
				cas, _ := strconv.Atoi(ver)
				body = map[string]any{"data": data, "options": map[string]any{"cas": cas}}
			} else {
				data[customMetadataField] = map[string]any{provider.ManagedByKey: provider.ManagedByValue}
			}
			return c.write(ctx, fmt.Sprintf("deleting property %q of %s", ref.Property, path), path, body)
		}
	}
	target := path
	if c.paths.v2 {
		target = c.paths.metadata(ref.RemoteKey)
	}
	return c.remove(ctx, "deleting "+target, target)
}

// readData reads an entry's current fields; a missing (or deleted) entry
// is not an error.
func (c *client) readData(ctx context.Context, key string) (map[string]any, bool, error) {
	data, exists, _, err := c.readCurrent(ctx, key)
	return data, exists, err
}

// readCurrent reads an entry's current fields and, on KV v2, its version.
// A missing entry, or on KV v2 one whose current version is deleted, is not
// an error: exists is false and the version unknown ("").
func (c *client) readCurrent(ctx context.Context, key string) (map[string]any, bool, string, error) {
	path := c.paths.data(key)
	sec, err := c.read(ctx, "reading "+path, path, nil)
	if errors.Is(err, provider.ErrNotFound) {
		return nil, false, "", nil
	}
	if err != nil || sec == nil || sec.Data == nil {
		return nil, false, "0", err
	}
	if !c.paths.v2 {
		return sec.Data, true, "", nil
	}
	version := "0"
	if md, ok := sec.Data["metadata"].(map[string]any); ok && md["version"] != nil {
		version = fmt.Sprint(md["version"])
	}
	data, _ := sec.Data["data"].(map[string]any)
	return data, data != nil, version, nil
}

// markedV1 says whether a KV v1 entry carries ESO's mark.
func markedV1(data map[string]any) bool {
	md, _ := data[customMetadataField].(map[string]any)
	return fmt.Sprint(md[provider.ManagedByKey]) == provider.ManagedByValue
}

// write sends body to path with a valid token, logging in again once when
// Vault refuses the token itself. A failed check-and-set wraps ErrConflict.
func (c *client) write(ctx context.Context, op, path string, body map[string]any) error {
	return c.mutate(ctx, op, func(ctx context.Context) error {
		_, err := c.api.Logical().WriteWithContext(ctx, path, body)
		return err
	})
}

// remove deletes path with a valid token.
func (c *client) remove(ctx context.Context, op, path string) error {
	return c.mutate(ctx, op, func(ctx context.Context) error {
		_, err := c.api.Logical().DeleteWithContext(ctx, path)
		return err
	})
}

func (c *client) mutate(ctx context.Context, op string, call func(context.Context) error) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if err := c.session.ensure(ctx); err != nil {
		return err
	}
	used := c.session.current()
	err := call(ctx)
	if isStatus(err, http.StatusForbidden) && c.session.canRefresh() && !c.tokenValid(ctx) {
		if rerr := c.session.refresh(ctx, used); rerr != nil {
			return rerr
		}
		err = call(ctx)
	}
	if isCASMismatch(err) {
		return fmt.Errorf("%s: %w", op, provider.ErrConflict)
	}
	return classify(op, nil, err, false)
}

// isCASMismatch says whether Vault refused a write's check-and-set.
func isCASMismatch(err error) bool {
	var re *vaultapi.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "check-and-set") {
			return true
		}
	}
	return false
}
