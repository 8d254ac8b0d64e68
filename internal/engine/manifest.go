package engine

import (
	"context"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// Manifest names the kind of a target that is not a Secret (ESO's
// spec.target.manifest, served with --unsafe-allow-generic-targets).
type Manifest struct {
	APIVersion, Kind string
}

// IsConfigMap says whether the manifest names a core v1 ConfigMap.
func (m *Manifest) IsConfigMap() bool {
	return m != nil && m.APIVersion == "v1" && m.Kind == "ConfigMap"
}

// Kind is the kind of object the target is: "Secret", or the manifest's
// kind.
func (t Target) Kind() string {
	if t.Manifest != nil {
		return t.Manifest.Kind
	}
	return "Secret"
}

// applyManifest writes a target that is not a Secret: a ConfigMap
// (typed, below) or any other namespaced kind (manifest_object.go).
func (e *Engine) applyManifest(ctx context.Context, plan Plan, d *desired, res Result) (Result, error) {
	if plan.Target.Manifest.IsConfigMap() {
		return e.applyConfigMap(ctx, plan, d, res)
	}
	return e.applyObject(ctx, plan, d, res)
}

// manifestWrite is one proposed change to a manifest target (a ConfigMap
// or another kind), examined by the manifest write checks.
type manifestWrite struct {
	plan Plan
	// kind names the target's kind in messages.
	kind string
	// current is the object as it is.
	current metav1.Object
	// currentKeys and nextKeys count the values the object holds now and
	// would hold after the write.
	currentKeys, nextKeys int
	// immutable: the current object is immutable (a ConfigMap's immutable).
	immutable bool
	// gone: every source is gone and deletionPolicy tolerated it.
	gone bool
}

// manifestCheck says why a proposed write to a manifest target may not
// happen (nil: it may); its reason and message go into the Ready condition
// and Event.
type manifestCheck func(w *manifestWrite) *Error

// manifestClaimChecks decide whether the plan may touch the existing
// object at all (write into it, or delete it): the rules of Secrets.
var manifestClaimChecks = []manifestCheck{
	manifestNeverTakenOver,
}

// manifestChangeChecks decide whether the existing object may change;
// they run only when the content differs.
var manifestChangeChecks = []manifestCheck{
	manifestNeverBlank,
	manifestImmutableNeverChanges,
}

func runManifestChecks(w *manifestWrite, chain []manifestCheck) *Error {
	for _, check := range chain {
		if err := check(w); err != nil {
			return err
		}
	}
	return nil
}

// manifestNeverTakenOver: an object keyferry did not create for this
// owner (controller ownerReference with its UID, or the owner annotation)
// is written only when its adopt annotation names the owner.
func manifestNeverTakenOver(w *manifestWrite) *Error {
	c, t := w.current, w.plan.Target
	if Owned(c, w.plan) || adoptable(c, w.plan) {
		return nil
	}
	return fail(ReasonSecretNotOwned, "%s %q exists and was not created by %s; keyferry never takes over a %s it does not own (annotate the %s %s=%s to adopt it)", w.kind, t.Name, t.ManagedBy, w.kind, w.kind, AnnotationAdopt, t.ManagedBy)
}

// manifestNeverBlank: sources that produced no key never empty an object
// that has some, unless every remote value is gone and deletionPolicy
// Merge removes the keys.
func manifestNeverBlank(w *manifestWrite) *Error {
	if w.nextKeys > 0 || w.currentKeys == 0 {
		return nil
	}
	if w.gone && w.plan.Target.DeletionPolicy == esv1.DeletionPolicyMerge {
		return nil
	}
	e := fail(ReasonWouldBeEmpty, "the sources produced no key; keyferry never blanks %s %q, which keeps its content (check spec.data, spec.dataFrom and the template)", w.kind, w.current.GetName())
	e.RetryAfter = max(w.plan.MaxAge, time.Minute)
	return e
}

func manifestImmutableNeverChanges(w *manifestWrite) *Error {
	if !w.immutable {
		return nil
	}
	return fail(ReasonSecretImmutable, "%s %q is immutable and its desired content changed; delete it to let keyferry recreate it", w.kind, w.current.GetName())
}

// configMapData splits the desired keys as a ConfigMap holds them: UTF-8
// values in data, the others in binaryData.
func configMapData(in map[string][]byte) (map[string]string, map[string][]byte) {
	var data map[string]string
	var bin map[string][]byte
	for k, v := range in {
		if utf8.Valid(v) {
			if data == nil {
				data = map[string]string{}
			}
			data[k] = string(v)
			continue
		}
		if bin == nil {
			bin = map[string][]byte{}
		}
		bin[k] = v
	}
	return data, bin
}

// readConfigMap reads the target ConfigMap from the API server (ConfigMaps
// are not cached); nil when there is none.
func (e *Engine) readConfigMap(ctx context.Context, key client.ObjectKey) (*corev1.ConfigMap, error) {
	var c corev1.ConfigMap
	if err := e.APIReader.Get(ctx, key, &c); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return &c, nil
}

// applyConfigMap writes the desired content to the target ConfigMap with
// the ownership rules of Secrets: it creates one, updates one it owns (or
// one annotated for adoption), deletes one it owns when every remote value
// is gone and deletionPolicy is Delete, and never writes when nothing
// changed. Every refusal leaves the ConfigMap as it was.
func (e *Engine) applyConfigMap(ctx context.Context, plan Plan, d *desired, res Result) (Result, error) {
	t := plan.Target
	key := client.ObjectKey{Namespace: plan.Owner.Namespace, Name: t.Name}
	cur, err := e.readConfigMap(ctx, key)
	if err != nil {
		return res, fail(ReasonWriteFailed, "reading ConfigMap %s: %v", key.Name, APIMessage(err))
	}
	w := &manifestWrite{plan: plan, kind: "ConfigMap", gone: d.gone}
	if cur == nil {
		if d.gone {
			res.Gone = true
			return res, nil
		}
		err := e.Client.Create(ctx, newConfigMap(plan, d, res.Hash))
		if err == nil {
			res.Created = true
			return res, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return res, fail(ReasonWriteFailed, "creating ConfigMap %q: %v", t.Name, APIMessage(err))
		}
		if cur, err = e.readConfigMap(ctx, key); err != nil || cur == nil {
			return res, fail(ReasonWriteFailed, "reading ConfigMap %s after a create conflict: %v", key.Name, err)
		}
	}
	w.current, w.currentKeys = cur, len(cur.Data)+len(cur.BinaryData)
	w.immutable = cur.Immutable != nil && *cur.Immutable
	if err := runManifestChecks(w, manifestClaimChecks); err != nil {
		return res, err
	}
	if d.gone && t.DeletionPolicy == esv1.DeletionPolicyDelete {
		if err := e.Client.Delete(ctx, cur, client.Preconditions{UID: &cur.UID, ResourceVersion: &cur.ResourceVersion}); err != nil && !apierrors.IsNotFound(err) {
			return res, fail(ReasonWriteFailed, "deleting ConfigMap %q: %v", t.Name, APIMessage(err))
		}
		res.Deleted, res.Gone = true, true
		return res, nil
	}

	next := cur.DeepCopy()
	next.ManagedFields = nil
	next.Data, next.BinaryData = configMapData(d.data)
	markManaged(next, plan, d)
	w.nextKeys = len(next.Data) + len(next.BinaryData)
	if sameConfigMap(cur, next) {
		return res, nil
	}
	if err := runManifestChecks(w, manifestChangeChecks); err != nil {
		return res, err
	}
	next.Annotations[AnnotationDataHash] = res.Hash
	if t.Immutable {
		next.Immutable = ptr(true)
	}
	if err := e.Client.Update(ctx, next); err != nil {
		return res, fail(ReasonWriteFailed, "updating ConfigMap %q: %v", t.Name, APIMessage(err))
	}
	res.Updated = true
	return res, nil
}

func newConfigMap(plan Plan, d *desired, hash string) *corev1.ConfigMap {
	t := plan.Target
	c := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   plan.Owner.Namespace,
			Name:        t.Name,
			Labels:      overlay(nil, t.Labels, d.labels),
			Annotations: overlay(nil, t.Annotations, d.annotations),
		},
	}
	c.Data, c.BinaryData = configMapData(d.data)
	c.Labels[LabelManaged] = LabelManagedValue
	c.Annotations[AnnotationDataHash] = hash
	if t.SetOwnerReference {
		setControllerOf(c, plan.Owner)
	} else {
		c.Annotations[AnnotationOwner] = t.ManagedBy
	}
	if t.Immutable {
		c.Immutable = ptr(true)
	}
	return c
}

// markManaged sets on an existing target what marks it as the plan's: the
// controller ownerReference (creationPolicy Owner) or the owner
// annotation, the managed label, the template's labels and annotations;
// and removes the adopt annotation. The data-hash annotation is set by the
// caller when it writes.
func markManaged(obj metav1.Object, plan Plan, d *desired) {
	t := plan.Target
	anns := obj.GetAnnotations()
	if anns == nil {
		anns = map[string]string{}
	}
	if t.SetOwnerReference {
		setControllerOf(obj, plan.Owner)
	} else {
		anns[AnnotationOwner] = t.ManagedBy
	}
	delete(anns, AnnotationAdopt)
	labels := overlay(obj.GetLabels(), t.Labels, d.labels)
	labels[LabelManaged] = LabelManagedValue
	obj.SetLabels(labels)
	obj.SetAnnotations(overlay(anns, t.Annotations, d.annotations))
}

// setControllerOf makes o the controller owner of obj, replacing another
// controller reference (one the claim checks allowed: adoption).
func setControllerOf(obj metav1.Object, o Owner) {
	refs := obj.GetOwnerReferences()
	keep := refs[:0:0]
	for _, r := range refs {
		if r.Controller == nil || !*r.Controller {
			keep = append(keep, r)
		}
	}
	obj.SetOwnerReferences(append(keep, metav1.OwnerReference{
		APIVersion: o.APIVersion, Kind: o.Kind, Name: o.Name, UID: o.UID,
		Controller: ptr(true), BlockOwnerDeletion: ptr(true),
	}))
}

// sameConfigMap compares what keyferry controls, ignoring the hash
// annotation.
func sameConfigMap(a, b *corev1.ConfigMap) bool {
	return sameMap(a.Data, b.Data, "") && sameBytes(a.BinaryData, b.BinaryData) && sameControlledMeta(a, b)
}
