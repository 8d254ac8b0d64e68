// This file is the write side of the gcpsm provider (PushSecret), with
// ESO's meaning of a push to GCP Secret Manager:
//
//   - A secret keyferry creates carries the label managed-by:
//     external-secrets (ESO's), so a secret ESO pushed counts as pushed by
//     keyferry and the other way round; a secret without it is never
//     written, and never deleted.
//   - A new secret is created with automatic replication, or, in a store
//     with a location (regional secrets), without any replication (ESO: a
//     regional secret cannot set one).
//   - A push's metadata (ESO's PushSecretMetadata, pushmetadata.go) sets the
//     labels, annotations, topics, replication and CMEK key of a secret it
//     creates, and the labels and annotations of an existing one
//     (UpdateSecret, conditional on its etag) when they differ from what the
//     metadata asks; the managed-by label always stays. A push without
//     metadata leaves an existing secret's labels and annotations alone.
//     Metadata with a remoteRef.property is refused, as ESO does.
//   - Every push adds a version, and only when the latest version does not
//     already hold what would be written. Without remoteRef.property the
//     version is the pushed bytes as they are (the whole Secret: its keys as
//     a JSON object of strings); with a property, the latest version's JSON
//     object with that one field set, the other fields kept.
//   - Delete of a property adds a version without it; of the last property,
//     or without a property, deletes the secret (ESO deletes the whole
//     secret even for a property).
//
// Check-and-set: Secret Manager cannot make AddSecretVersion conditional.
// The version Inspect saw is read again right before AddSecretVersion, and
// a push whose remote moved on fails with provider.ErrConflict; a write of
// another client between that read and AddSecretVersion is not detected.
// CreateSecret is atomic (an existing secret fails it), and DeleteSecret is
// conditional on the etag of the secret read just before (a change of its
// labels meanwhile fails it).

package gcpsm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/keyferry/keyferry/internal/provider"
)

var _ provider.Pusher = (*Client)(nil)

// maxPayload is the largest version Secret Manager stores (64 KiB).
const maxPayload = 64 << 10

// pathSyntax are the characters of a gjson path: a property holding one
// would be read back (engine/values) as a path, not as the field written.
const pathSyntax = `.*?|#@\!`

// writeRetry disables the SDK's retries of a write: a repeated
// AddSecretVersion would add a second version. The engine retries with its
// own backoff.
func writeRetry() gax.CallOption {
	return gax.WithRetry(func() gax.Retryer { return &droppedRetryer{} })
}

// Inspect reads the state of a secret: it exists when its metadata does
// (even without any version, so a secret of someone else is not taken for
// free), is managed when it carries ESO's managed-by label, and its
// version, the check-and-set token, is the ID of its latest version ("" for
// none). With a property, the latest version is read to tell whether its
// JSON object has that field.
func (c *Client) Inspect(ctx context.Context, ref provider.PushRef) (provider.RemoteState, error) {
	if err := checkPushRef(ref); err != nil {
		return provider.RemoteState{}, err
	}
	sec, err := c.sm.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: c.secretName(ref.RemoteKey)}, readRetry())
	if status.Code(err) == codes.NotFound {
		return provider.RemoteState{}, nil
	}
	if err != nil {
		return provider.RemoteState{}, fmt.Errorf("reading secret %s: %w", ref, mapError(err))
	}
	st := provider.RemoteState{Exists: true, Managed: managed(sec.GetLabels())}
	if !st.Managed && ref.Property == "" {
		return st, nil // the core refuses it: its versions do not matter
	}
	data, version, found, err := c.latestVersion(ctx, ref)
	if err != nil {
		return provider.RemoteState{}, err
	}
	st.Version = version
	if ref.Property != "" && found {
		if obj, ok := jsonObject(data); ok {
			_, st.PropertyExists = obj[ref.Property]
		}
	}
	return st, nil
}

// Push writes v at ref (see the file's comment), provided the secret is
// still as want says: still missing (CreateSecret fails on an existing
// one), or still labelled with the same latest version. With metadata
// (v.Metadata), the secret is created with it, or an existing secret's
// labels and annotations are updated to it first (updateMetadata).
func (c *Client) Push(ctx context.Context, ref provider.PushRef, v provider.PushValue, want provider.RemoteState) (bool, error) {
	if err := checkPushRef(ref); err != nil {
		return false, err
	}
	op := "pushing to secret " + ref.String()
	if want.Exists && !want.Managed {
		return false, fmt.Errorf("%s: %w", op, provider.ErrNotManaged)
	}
	meta, err := c.metadataOf(ref, v)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	var (
		current []byte
		sec     *secretmanagerpb.Secret
	)
	found := false
	if want.Exists {
		sec, err = c.sm.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: c.secretName(ref.RemoteKey)}, readRetry())
		if status.Code(err) == codes.NotFound {
			return false, fmt.Errorf("%s: it was deleted meanwhile: %w", op, provider.ErrConflict)
		}
		if err != nil {
			return false, fmt.Errorf("%s: %w", op, mapError(err))
		}
		if !managed(sec.GetLabels()) {
			return false, fmt.Errorf("%s: %w", op, provider.ErrNotManaged)
		}
		data, version, ok, err := c.latestVersion(ctx, ref)
		if err != nil {
			return false, err
		}
		if version != want.Version {
			return false, fmt.Errorf("%s: its latest version is %q, not %q as read before: %w", op, version, want.Version, provider.ErrConflict)
		}
		current, found = data, ok
	}
	next, changed, err := nextPayload(ref, v, current, found)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if changed && len(next) > maxPayload {
		return false, fmt.Errorf("%s: %w: the version would be %d bytes; Secret Manager holds at most %d", op, provider.ErrInvalidPush, len(next), maxPayload)
	}
	wrote := false
	if want.Exists && meta != nil {
		if wrote, err = c.updateMetadata(ctx, sec, *meta); err != nil {
			return false, fmt.Errorf("%s: %w", op, err)
		}
	}
	if !changed {
		return wrote, nil
	}
	if !want.Exists {
		if err := c.create(ctx, ref, meta); err != nil {
			return false, fmt.Errorf("%s: %w", op, err)
		}
	}
	if err := c.addVersion(ctx, ref, next); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	return true, nil
}

// metadataOf parses the metadata of v (nil without any): ESO's
// PushSecretMetadata, possible in this store and, as ESO, not together with
// a property.
func (c *Client) metadataOf(ref provider.PushRef, v provider.PushValue) (*pushMetadata, error) {
	if len(v.Metadata) == 0 {
		return nil, nil
	}
	m, err := parsePushMetadata(v.Metadata)
	if err != nil {
		return nil, err
	}
	if err := checkMetadataForStore(m, c.regional()); err != nil {
		return nil, err
	}
	if ref.Property != "" {
		return nil, fmt.Errorf("%w: metadata cannot be set together with remoteRef.property (ESO refuses both at once): the labels and annotations belong to the whole secret", provider.ErrInvalidPush)
	}
	return &m, nil
}

// updateMetadata sets the labels and annotations of sec to what m asks
// (wantMetadata), when they differ, with sec's etag so that a change of the
// secret meanwhile fails it; it says whether it wrote.
func (c *Client) updateMetadata(ctx context.Context, sec *secretmanagerpb.Secret, m pushMetadata) (bool, error) {
	labels, annotations := wantMetadata(m, sec.GetLabels())
	if maps.Equal(labels, sec.GetLabels()) && maps.Equal(annotations, sec.GetAnnotations()) {
		return false, nil
	}
	_, err := c.sm.UpdateSecret(ctx, &secretmanagerpb.UpdateSecretRequest{
		Secret: &secretmanagerpb.Secret{
			Name:        sec.GetName(),
			Etag:        sec.GetEtag(),
			Labels:      labels,
			Annotations: annotations,
		},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels", "annotations"}},
	}, writeRetry())
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.NotFound:
		return false, fmt.Errorf("updating its labels and annotations: the secret was deleted meanwhile: %w", provider.ErrConflict)
	case codes.Aborted, codes.FailedPrecondition:
		return false, fmt.Errorf("updating its labels and annotations: it changed meanwhile (etag): %w", provider.ErrConflict)
	default:
		return false, fmt.Errorf("updating its labels and annotations: %w", mapError(err))
	}
}

// Delete removes what keyferry pushed at ref: the property (adding a
// version without it), or the secret with every version when ref names no
// property or the property was the last field. A missing secret, or one
// without ESO's managed-by label, is left alone; so is a secret whose
// latest version does not hold the property.
func (c *Client) Delete(ctx context.Context, ref provider.PushRef, _ provider.RemoteState) error {
	if err := checkPushRef(ref); err != nil {
		return err
	}
	name := c.secretName(ref.RemoteKey)
	sec, err := c.sm.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: name}, readRetry())
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting secret %s: %w", ref, mapError(err))
	}
	if !managed(sec.GetLabels()) {
		return nil
	}
	if ref.Property != "" {
		data, _, found, err := c.latestVersion(ctx, ref)
		if err != nil {
			return err
		}
		obj, ok := jsonObject(data)
		if !found || !ok {
			return nil
		}
		if _, has := obj[ref.Property]; !has {
			return nil
		}
		delete(obj, ref.Property)
		if len(obj) > 0 {
			next, err := encodeObject(obj)
			if err != nil {
				return fmt.Errorf("deleting secret %s: %w", ref, err)
			}
			if err := c.addVersion(ctx, ref, next); err != nil {
				return fmt.Errorf("deleting secret %s: %w", ref, err)
			}
			return nil
		}
	}
	err = c.sm.DeleteSecret(ctx, &secretmanagerpb.DeleteSecretRequest{Name: name, Etag: sec.GetEtag()}, writeRetry())
	switch status.Code(err) {
	case codes.OK, codes.NotFound:
		return nil
	case codes.Aborted, codes.FailedPrecondition:
		return fmt.Errorf("deleting secret %q: it changed meanwhile (etag): %w", ref.RemoteKey, provider.ErrConflict)
	default:
		return fmt.Errorf("deleting secret %q: %w", ref.RemoteKey, mapError(err))
	}
}

// create creates the secret of ref with ESO's managed-by label and what
// the push's metadata m (nil: none) asks (newSecret).
func (c *Client) create(ctx context.Context, ref provider.PushRef, m *pushMetadata) error {
	sec := newSecret(m, c.regional())
	_, err := c.sm.CreateSecret(ctx, &secretmanagerpb.CreateSecretRequest{
		Parent:   c.parent,
		SecretId: ref.RemoteKey,
		Secret:   sec,
	}, writeRetry())
	if status.Code(err) == codes.AlreadyExists {
		return fmt.Errorf("it was created meanwhile: %w", provider.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("creating it: %w", mapError(err))
	}
	return nil
}

// addVersion adds a version holding data, with its CRC32C so that Secret
// Manager refuses a payload damaged on the way.
func (c *Client) addVersion(ctx context.Context, ref provider.PushRef, data []byte) error {
	sum := int64(crc32.Checksum(data, castagnoli))
	_, err := c.sm.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent:  c.secretName(ref.RemoteKey),
		Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &sum},
	}, writeRetry())
	if status.Code(err) == codes.NotFound {
		return fmt.Errorf("adding a version: the secret was deleted meanwhile: %w", provider.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("adding a version: %w", mapError(err))
	}
	return nil
}

// latestVersion reads the latest version of ref's secret: its payload, its
// ID, and whether there is one (a secret without any enabled version has
// none; that is not an error). A latest version that is disabled or
// destroyed is an error: what it held cannot be kept nor compared.
func (c *Client) latestVersion(ctx context.Context, ref provider.PushRef) ([]byte, string, bool, error) {
	resp, err := c.sm.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{
		Name: c.secretName(ref.RemoteKey) + "/versions/" + latest,
	}, readRetry())
	switch {
	case status.Code(err) == codes.NotFound:
		return nil, "", false, nil
	case isDisabledOrDestroyed(err):
		// The remote needs fixing, not the store: no backoff (ErrInvalidPush).
		return nil, "", false, fmt.Errorf("%w: the latest version of secret %q is disabled or destroyed; enable it, or add a version, before pushing to it",
			provider.ErrInvalidPush, ref.RemoteKey)
	case err != nil:
		return nil, "", false, fmt.Errorf("reading the latest version of secret %q: %w", ref.RemoteKey, mapError(err))
	}
	if err := checkPayload(resp.GetPayload()); err != nil {
		return nil, "", false, fmt.Errorf("reading the latest version of secret %q: %w", ref.RemoteKey, err)
	}
	return resp.GetPayload().GetData(), versionID(resp.GetName()), true, nil
}

func (c *Client) regional() bool { return strings.Contains(c.parent, "/locations/") }

// managed says whether labels carry ESO's managed-by mark.
func managed(labels map[string]string) bool {
	return labels[provider.ManagedByKey] == provider.ManagedByValue
}

// checkPushRef refuses a remote key that is not a Secret Manager secret ID
// and a property that the read side would take for a gjson path.
func checkPushRef(ref provider.PushRef) error {
	if !pathToken.MatchString(ref.RemoteKey) || len(ref.RemoteKey) > 255 {
		return fmt.Errorf("%w: remoteKey %q is not a GCP secret ID (up to 255 letters, digits, '-' and '_')", provider.ErrInvalidPush, ref.RemoteKey)
	}
	if strings.ContainsAny(ref.Property, pathSyntax) {
		return fmt.Errorf("%w: property %q of secret %q: a property pushed to GCP Secret Manager is one top-level field of a JSON object and cannot hold any of %s",
			provider.ErrInvalidPush, ref.Property, ref.RemoteKey, pathSyntax)
	}
	return nil
}

// nextPayload computes the version a push writes and whether it differs
// from the latest one (current, when found).
func nextPayload(ref provider.PushRef, v provider.PushValue, current []byte, found bool) ([]byte, bool, error) {
	value := v.Value
	if v.Whole() {
		obj := make(map[string]json.RawMessage, len(v.Secret))
		for k, b := range v.Secret {
			s, err := jsonString(b)
			if err != nil {
				return nil, false, fmt.Errorf("%w: key %q of the source Secret: %w", provider.ErrInvalidPush, k, err)
			}
			obj[k] = s
		}
		b, err := encodeObject(obj)
		if err != nil {
			return nil, false, err
		}
		value = b
	}
	if ref.Property == "" {
		return value, !found || !bytes.Equal(current, value), nil
	}
	obj := map[string]json.RawMessage{}
	if found {
		var ok bool
		if obj, ok = jsonObject(current); !ok {
			return nil, false, fmt.Errorf("%w: the latest version is not a JSON object, so property %q cannot be set in it; push without a property to replace it", provider.ErrInvalidPush, ref.Property)
		}
	}
	if old, ok := obj[ref.Property]; ok && bytes.Equal(fieldValue(old), value) {
		return nil, false, nil
	}
	s, err := jsonString(value)
	if err != nil {
		what := fmt.Sprintf("secretKey %q", v.SecretKey)
		if v.Whole() {
			what = "the source Secret"
		}
		return nil, false, fmt.Errorf("%w: %s: %w", provider.ErrInvalidPush, what, err)
	}
	obj[ref.Property] = s
	next, err := encodeObject(obj)
	if err != nil {
		return nil, false, err
	}
	return next, true, nil
}

// errNotText: a value pushed into a JSON object must be text.
var errNotText = errors.New("the value is not UTF-8 text, so it cannot be stored as a JSON string (push it without a property)")

// jsonString encodes b as a JSON string, without HTML escaping (as ESO).
// Bytes that are not UTF-8 are refused rather than replaced.
func jsonString(b []byte) (json.RawMessage, error) {
	if !utf8.Valid(b) {
		return nil, errNotText
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(string(b)); err != nil {
		return nil, errNotText
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// encodeObject encodes a JSON object with its fields in key order. Its
// values are already JSON.
func encodeObject(obj map[string]json.RawMessage) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(obj)) {
		if i > 0 {
			buf.WriteByte(',')
		}
		key, err := jsonString([]byte(k))
		if err != nil {
			return nil, fmt.Errorf("%w: field name %q: %w", provider.ErrInvalidPush, k, err)
		}
		buf.Write(key)
		buf.WriteByte(':')
		buf.Write(obj[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// jsonObject parses a JSON object into its fields, kept as they are; ok is
// false for anything else. The decoder's error is not kept: it may quote
// the value.
func jsonObject(data []byte) (map[string]json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil || obj == nil {
		return nil, false
	}
	return obj, true
}

// fieldValue is what an ExternalSecret reading the field gets (as
// engine/values.Property): a string unquoted, any other JSON as its text.
func fieldValue(raw json.RawMessage) []byte {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []byte(s)
	}
	return bytes.TrimSpace(raw)
}
