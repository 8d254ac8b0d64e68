package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/provider"
)

// LabelPushed marks a remote Secret keyferry created for a PushSecret. ESO's
// kubernetes provider leaves no mark and overwrites any Secret; keyferry
// writes and deletes only Secrets carrying this label.
const LabelPushed = "keyferry.io/pushed"

var _ provider.Pusher = (*Client)(nil)

// Inspect reads the remote Secret remoteKey names in the store's remote
// namespace.
func (c *Client) Inspect(ctx context.Context, ref provider.PushRef) (provider.RemoteState, error) {
	s, err := c.secrets.Get(ctx, ref.RemoteKey, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return provider.RemoteState{}, nil
	}
	if err != nil {
		return provider.RemoteState{}, apiError(fmt.Sprintf("reading secret %q in namespace %q (%s)", ref.RemoteKey, c.namespace, c.who), err)
	}
	return stateOf(s, ref), nil
}

func stateOf(s *corev1.Secret, ref provider.PushRef) provider.RemoteState {
	st := provider.RemoteState{Exists: true, Managed: s.Labels[LabelPushed] == "true", Version: s.ResourceVersion}
	if ref.Property != "" {
		_, st.PropertyExists = s.Data[ref.Property]
	}
	return st
}

// Push writes into the remote Secret with ESO's meaning of remoteRef:
// remoteKey is the Secret's name; property is one of its keys. A key with a
// property writes that key's value there; the whole Secret (no secretKey)
// with a property writes its keys as one JSON object there, and without a
// property replaces the remote Secret's data with the source Secret's. A
// key without a property is refused, as in ESO. The resourceVersion Inspect
// saw is the check-and-set: a Secret changed since fails with a conflict.
// The remote Secret gets the source Secret's labels and annotations as ESO
// gives them, shaped by the push's metadata (pushmetadata.go), and always
// keyferry's LabelPushed.
func (c *Client) Push(ctx context.Context, ref provider.PushRef, v provider.PushValue, want provider.RemoteState) (bool, error) {
	what := fmt.Sprintf("pushing to secret %q in namespace %q (%s)", ref.RemoteKey, c.namespace, c.who)
	if ref.Property == "" && !v.Whole() {
		return false, fmt.Errorf("%s: %w: the kubernetes provider needs remoteRef.property (the key of the remote Secret) to push secretKey %q", what, provider.ErrInvalidPush, v.SecretKey)
	}
	typ := corev1.SecretTypeOpaque
	if v.Type != "" {
		typ = corev1.SecretType(v.Type)
	}
	if typ == corev1.SecretTypeServiceAccountToken || typ == corev1.SecretTypeBootstrapToken {
		return false, fmt.Errorf("%s: %w: a Secret of type %s is a credential the cluster honours and is not pushed", what, provider.ErrInvalidPush, typ)
	}
	meta, err := pushMetadataOf(v.Metadata)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	if !want.Exists {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: ref.RemoteKey, Namespace: c.namespace},
			Type:       typ,
		}
		setMetadata(s, v, meta)
		if err := setData(s, ref, v); err != nil {
			return false, fmt.Errorf("%s: %w", what, err)
		}
		if _, err := c.secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return false, fmt.Errorf("%s: %w (created by someone else)", what, provider.ErrConflict)
			}
			return false, apiError(what, err)
		}
		return true, nil
	}
	cur, err := c.secrets.Get(ctx, ref.RemoteKey, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, fmt.Errorf("%s: %w (deleted)", what, provider.ErrConflict)
	}
	if err != nil {
		return false, apiError(what, err)
	}
	if cur.ResourceVersion != want.Version {
		return false, fmt.Errorf("%s: %w", what, provider.ErrConflict)
	}
	if cur.Labels[LabelPushed] != "true" {
		return false, fmt.Errorf("%s: %w", what, provider.ErrNotManaged)
	}
	next := cur.DeepCopy()
	next.Type = typ
	if err := setData(next, ref, v); err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	setMetadata(next, v, meta)
	if next.Type == cur.Type && sameMetadata(next, cur) && maps.EqualFunc(next.Data, cur.Data, func(a, b []byte) bool { return string(a) == string(b) }) {
		return false, nil
	}
	if _, err := c.secrets.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return false, fmt.Errorf("%s: %w", what, provider.ErrConflict)
		}
		return false, apiError(what, err)
	}
	return true, nil
}

// setData writes v into s's data as ref says (Push).
func setData(s *corev1.Secret, ref provider.PushRef, v provider.PushValue) error {
	if ref.Property == "" {
		s.Data = maps.Clone(v.Secret)
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		return nil
	}
	if s.Data == nil {
		s.Data = map[string][]byte{}
	}
	if !v.Whole() {
		s.Data[ref.Property] = v.Value
		return nil
	}
	m := make(map[string]string, len(v.Secret))
	for k, b := range v.Secret {
		m[k] = string(b)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("%w: the source Secret cannot be encoded as JSON", provider.ErrInvalidPush)
	}
	s.Data[ref.Property] = b
	return nil
}

// Delete removes the property from a remote Secret keyferry pushed, or the
// whole Secret when it names no property or the property was its last key.
// A Secret without keyferry's label is never touched.
func (c *Client) Delete(ctx context.Context, ref provider.PushRef, _ provider.RemoteState) error {
	what := fmt.Sprintf("deleting pushed secret %q in namespace %q (%s)", ref.RemoteKey, c.namespace, c.who)
	cur, err := c.secrets.Get(ctx, ref.RemoteKey, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return apiError(what, err)
	}
	if cur.Labels[LabelPushed] != "true" {
		return nil
	}
	if ref.Property != "" {
		if _, ok := cur.Data[ref.Property]; !ok {
			return nil
		}
		if len(cur.Data) > 1 {
			next := cur.DeepCopy()
			delete(next.Data, ref.Property)
			if _, err := c.secrets.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
				if apierrors.IsConflict(err) {
					return fmt.Errorf("%s: %w", what, provider.ErrConflict)
				}
				return apiError(what, err)
			}
			return nil
		}
	}
	rv := cur.ResourceVersion
	err = c.secrets.Delete(ctx, ref.RemoteKey, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	switch {
	case err == nil, apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		return fmt.Errorf("%s: %w", what, provider.ErrConflict)
	default:
		return apiError(what, err)
	}
}
