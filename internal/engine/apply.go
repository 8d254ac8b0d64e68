package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/kube"
)

// Labels and annotations keyferry puts on the Secrets it writes.
const (
	// LabelManaged marks a Secret written by keyferry (ESO's label, so that
	// Secrets ESO created are recognised and the informer selects both).
	LabelManaged      = "reconcile.external-secrets.io/managed"
	LabelManagedValue = "true"
	// AnnotationDataHash is the hash of the content keyferry wrote.
	AnnotationDataHash = "reconcile.external-secrets.io/data-hash"
	// AnnotationOwner names the object that writes the Secret
	// ("ExternalSecret/<name>"); it marks ownership where there is no
	// ownerReference (creationPolicy Orphan, or other front-ends).
	AnnotationOwner = "keyferry.io/owner"
	// AnnotationMergedKeys is the single list of merged keys older versions
	// kept for whoever merged last. It is read as nobody's (its keys are
	// never removed on its word) and replaced by
	// AnnotationMergedKeysByWriter on the next Merge.
	AnnotationMergedKeys = "keyferry.io/merged-keys"
	// AnnotationAdopt on a Secret keyferry did not create allows an
	// ExternalSecret with creationPolicy Owner or Orphan to take it over. Its
	// value must name the adopting object ("ExternalSecret/<name>").
	AnnotationAdopt = "keyferry.io/adopt"
)

// existing reads the target Secret from the cache, which holds every
// Secret keyferry manages. A Secret missing there may still exist unmanaged;
// apply finds out by creating it (AlreadyExists) rather than spending a GET
// on every new Secret.
func (e *Engine) existing(ctx context.Context, key client.ObjectKey) (*corev1.Secret, error) {
	var s corev1.Secret
	err := e.Client.Get(ctx, key, &s)
	if err == nil {
		return &s, nil
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return nil, err
}

// unmanaged reads a Secret the cache does not hold.
func (e *Engine) unmanaged(ctx context.Context, key client.ObjectKey) (*corev1.Secret, error) {
	var s corev1.Secret
	if err := e.APIReader.Get(ctx, key, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return &s, nil
}

// errStaleSecret says an update conflicted with a newer version of the
// Secret than the one the decision was made on.
var errStaleSecret = errors.New("the Secret changed since it was read")

// errValuesNeeded says the cached copy of the Secret holds the digest of
// its values (kube.DigestSecretData), which is enough to see that nothing
// changes but not to write: the decision is made again on the Secret read
// from the API server.
var errValuesNeeded = errors.New("the cache holds the digest of the Secret's values, not the values")

// apply writes the desired content to the target Secret, after the write
// checks (writepolicy.go) allow it. Every refusal leaves the Secret exactly
// as it was. When the update conflicts, the cache is behind the API server
// (an informer can take long to relist, after an API-server restart for
// example): apply decides once more on the Secret read from the API server,
// rather than failing every refresh until the cache catches up.
func (e *Engine) apply(ctx context.Context, plan Plan, d *desired, res Result) (Result, error) {
	if plan.Target.Manifest != nil {
		return e.applyManifest(ctx, plan, d, res) // manifest.go
	}
	out, err := e.applyTo(ctx, plan, d, res, e.existing)
	if errors.Is(err, errStaleSecret) || errors.Is(err, errValuesNeeded) {
		out, err = e.applyTo(ctx, plan, d, res, e.unmanaged)
	}
	if errors.Is(err, errStaleSecret) {
		return out, fail(ReasonWriteFailed, "%v", err)
	}
	return out, err
}

// applyTo is apply with the Secret as read reports it (nil: none).
func (e *Engine) applyTo(ctx context.Context, plan Plan, d *desired, res Result, read func(context.Context, client.ObjectKey) (*corev1.Secret, error)) (Result, error) {
	t := plan.Target
	key := client.ObjectKey{Namespace: plan.Owner.Namespace, Name: t.Name}
	cur, err := read(ctx, key)
	if err != nil {
		return res, fail(ReasonWriteFailed, "reading Secret %s: %v", key.Name, err)
	}
	w := &write{plan: plan, merge: t.CreationPolicy == esv1.CreatePolicyMerge || t.CreationPolicy == esv1.CreatePolicyCreateOrMerge, gone: d.gone}

	if cur == nil && t.CreationPolicy == esv1.CreatePolicyMerge {
		// Merge targets a Secret keyferry does not manage yet.
		if cur, err = e.unmanaged(ctx, key); err != nil {
			return res, fail(ReasonWriteFailed, "reading Secret %s: %v", key.Name, err)
		}
		if cur == nil {
			return res, fail(ReasonSecretMissing, "Secret %q does not exist and creationPolicy Merge never creates one", t.Name)
		}
	}
	if cur == nil {
		if d.gone {
			res.Gone = true // nothing to create from nothing
			return res, nil
		}
		w.next = e.newSecret(plan, d, res.Hash)
		if err := runChecks(w, contentChecks); err != nil {
			return res, err
		}
		err := e.Client.Create(ctx, w.next)
		if err == nil {
			res.Created, res.SecretRV = true, w.next.ResourceVersion
			return res, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return res, fail(ReasonWriteFailed, "creating Secret %q: %v", t.Name, APIMessage(err))
		}
		// A Secret keyferry does not manage (or one the cache has not seen
		// yet) is there: decide with its current state.
		if cur, err = e.unmanaged(ctx, key); err != nil || cur == nil {
			return res, fail(ReasonWriteFailed, "reading Secret %s after a create conflict: %v", key.Name, err)
		}
	}
	if !w.merge && !Owned(cur, plan) && !adoptable(cur, plan) && hasESOMarks(cur, plan) && cur.ManagedFields == nil {
		// Possibly a Secret ESO created for this ExternalSecret (Orphan):
		// its managedFields say so, and the cache strips them.
		if cur, err = e.unmanaged(ctx, key); err != nil || cur == nil {
			return res, fail(ReasonWriteFailed, "reading Secret %s: %v", key.Name, err)
		}
	}
	if _, digestOnly := kube.CachedDataDigest(cur); digestOnly && w.merge {
		return res, errValuesNeeded // a merge keeps the values it does not write
	}
	w.current = cur
	if err := runChecks(w, claimChecks); err != nil {
		return res, err
	}

	if d.gone && t.DeletionPolicy == esv1.DeletionPolicyDelete && !w.merge {
		if err := e.Client.Delete(ctx, cur, client.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}); err != nil && !apierrors.IsNotFound(err) {
			return res, fail(ReasonWriteFailed, "deleting Secret %q: %v", t.Name, APIMessage(err))
		}
		res.Deleted, res.Gone = true, true
		return res, nil
	}

	// A Secret ESO created for this ExternalSecret keeps ESO's marks until
	// keyferry has something to write, so a switch rewrites nothing.
	viaESO := !w.merge && !Owned(cur, plan) && !adoptable(cur, plan) && CreatedByESO(cur, plan)
	next := cur.DeepCopy()
	next.ManagedFields = nil
	if w.merge {
		mergeInto(next, d.data, t.ManagedBy)
	} else {
		next.Data = d.data
		if t.Type != "" {
			next.Type = t.Type
		}
		if t.SetOwnerReference {
			setController(next, plan.Owner)
		}
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		if !t.SetOwnerReference && !viaESO {
			// Without an ownerReference the annotation is the only mark of
			// ownership; with one (Owner), the reference is enough, so Secrets
			// ESO created are taken over without a rewrite.
			next.Annotations[AnnotationOwner] = t.ManagedBy
		}
		delete(next.Annotations, AnnotationAdopt)
	}
	next.Labels = overlay(next.Labels, t.Labels, d.labels)
	next.Labels[LabelManaged] = LabelManagedValue
	next.Annotations = overlay(next.Annotations, t.Annotations, d.annotations)
	w.next = next
	if err := runChecks(w, contentChecks); err != nil {
		return res, err
	}

	if sameContent(cur, next) {
		res.SecretRV = cur.ResourceVersion
		return res, nil
	}
	if _, digestOnly := kube.CachedDataDigest(cur); digestOnly {
		return res, errValuesNeeded
	}
	if err := runChecks(w, changeChecks); err != nil {
		return res, err
	}
	if viaESO && !t.SetOwnerReference {
		next.Annotations[AnnotationOwner] = t.ManagedBy
	}
	next.Annotations[AnnotationDataHash] = res.Hash
	if t.Immutable {
		next.Immutable = ptr(true)
	}
	if err := e.Client.Update(ctx, next); err != nil {
		if apierrors.IsConflict(err) {
			return res, fmt.Errorf("updating Secret %q: %w", t.Name, errStaleSecret)
		}
		return res, fail(ReasonWriteFailed, "updating Secret %q: %v", t.Name, APIMessage(err))
	}
	res.Updated, res.SecretRV = true, next.ResourceVersion
	return res, nil
}

func (e *Engine) newSecret(plan Plan, d *desired, hash string) *corev1.Secret {
	t := plan.Target
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   plan.Owner.Namespace,
			Name:        t.Name,
			Labels:      overlay(nil, t.Labels, d.labels),
			Annotations: overlay(nil, t.Annotations, d.annotations),
		},
		Type: t.Type,
		Data: d.data,
	}
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	s.Labels[LabelManaged] = LabelManagedValue
	s.Annotations[AnnotationDataHash] = hash
	if plan.Target.CreationPolicy == esv1.CreatePolicyCreateOrMerge {
		setMergedKeys(s, map[string][]string{t.ManagedBy: sortedKeys(d.data)})
	} else if !t.SetOwnerReference {
		s.Annotations[AnnotationOwner] = t.ManagedBy
	}
	if t.SetOwnerReference {
		setController(s, plan.Owner)
	}
	if t.Immutable {
		s.Immutable = ptr(true)
	}
	return s
}

func setController(s *corev1.Secret, o Owner) {
	refs := s.OwnerReferences[:0:0]
	for _, r := range s.OwnerReferences {
		if r.Controller == nil || !*r.Controller {
			refs = append(refs, r)
		}
	}
	s.OwnerReferences = append(refs, metav1.OwnerReference{
		APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, UID: o.UID,
		Controller: ptr(true), BlockOwnerDeletion: ptr(true),
	})
}

func overlay(base map[string]string, layers ...map[string]string) map[string]string {
	out := make(map[string]string, len(base))
	for k, v := range base {
		out[k] = v
	}
	for _, l := range layers {
		for k, v := range l {
			out[k] = v
		}
	}
	return out
}

// sameContent compares what keyferry controls, ignoring the hash
// annotation, so a Secret another controller (or ESO) wrote with the same
// content is not rewritten.
func sameContent(a, b *corev1.Secret) bool {
	return a.Type == b.Type && kube.SameData(a, b) && sameControlledMeta(a, b)
}

// sameBytes compares two maps of values.
func sameBytes(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// sameControlledMeta compares the metadata keyferry writes on a target
// (labels, annotations but the hash, owner references by UID).
func sameControlledMeta(a, b metav1.Object) bool {
	if !sameMap(a.GetLabels(), b.GetLabels(), "") || !sameMap(a.GetAnnotations(), b.GetAnnotations(), AnnotationDataHash) {
		return false
	}
	ao, bo := a.GetOwnerReferences(), b.GetOwnerReferences()
	if len(ao) != len(bo) {
		return false
	}
	for i := range ao {
		if ao[i].UID != bo[i].UID {
			return false
		}
	}
	return true
}

func sameMap(a, b map[string]string, ignore string) bool {
	n := 0
	for k, v := range a {
		if k == ignore {
			continue
		}
		n++
		if w, ok := b[k]; !ok || v != w {
			return false
		}
	}
	m := 0
	for k := range b {
		if k != ignore {
			m++
		}
	}
	return n == m
}

// APIMessage keeps an API error's reason, code and the fields it names,
// without echoing the object (API errors for Secrets can quote field
// values); any other error is "request failed".
func APIMessage(err error) string {
	if s, ok := err.(apierrors.APIStatus); ok {
		st := s.Status()
		msg := fmt.Sprintf("%s (%d)", st.Reason, st.Code)
		if st.Details != nil {
			var fields []string
			for _, c := range st.Details.Causes {
				if c.Field != "" {
					fields = append(fields, c.Field)
				}
			}
			if len(fields) > 0 {
				msg += " on " + strings.Join(fields, ", ")
			}
		}
		return msg
	}
	return "request failed"
}

func ptr[T any](v T) *T { return &v }
