package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/render"
)

// Manifest targets of any namespaced kind but Secret and ConfigMap (custom
// resources such as an Argo CD Application), written as unstructured
// objects in the owner's namespace with the ownership rules of ConfigMap
// targets (manifestClaimChecks, manifestChangeChecks). What is written, as
// ESO does:
//
//   - without a template: every key, as a string, under spec.data;
//   - with a template: the outputs of items whose target is a path
//     (render.Field) placed there, and the keys rendered into Data under
//     the top-level data field.
//
// The object is read from the API server at each sync (never cached).

// ReservedPathRoots are the top-level fields a template target path may not
// write: the object's identity and metadata are keyferry's to set.
var ReservedPathRoots = map[string]bool{"apiVersion": true, "kind": true, "metadata": true}

// TargetGVK parses the manifest's apiVersion and kind.
func (m *Manifest) TargetGVK() (schema.GroupVersionKind, error) {
	gv, err := schema.ParseGroupVersion(m.APIVersion)
	if err != nil {
		return schema.GroupVersionKind{}, fmt.Errorf("apiVersion %q is not group/version", m.APIVersion)
	}
	return gv.WithKind(m.Kind), nil
}

// describe names the manifest's kind in messages: "AppConfig
// (config.example.com/v1)".
func (m *Manifest) describe() string { return m.Kind + " (" + m.APIVersion + ")" }

// resolveKind finds the resource that serves the manifest's kind with the
// client's RESTMapper and refuses a kind the API server does not serve and
// a cluster-scoped one.
func (e *Engine) resolveKind(m *Manifest) (*meta.RESTMapping, error) {
	gvk, err := m.TargetGVK()
	if err != nil {
		return nil, fail(ReasonInvalidSpec, "spec.target.manifest: %v", err)
	}
	mapper := e.Client.RESTMapper()
	if mapper == nil {
		return nil, fail(ReasonTargetKindUnsupported, "spec.target.manifest %s: the operator has no REST mapper to resolve it", m.describe())
	}
	mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	switch {
	case meta.IsNoMatchError(err):
		return nil, fail(ReasonTargetKindUnsupported, "spec.target.manifest %s is not served by the API server (is its CustomResourceDefinition installed?)", m.describe())
	case err != nil:
		return nil, fail(ReasonWriteFailed, "resolving spec.target.manifest %s: %v", m.describe(), err)
	case mapping.Scope.Name() != meta.RESTScopeNameNamespace:
		return nil, fail(ReasonTargetKindUnsupported, "spec.target.manifest %s is cluster-scoped; an ExternalSecret writes only namespaced kinds, in its own namespace", m.describe())
	}
	return mapping, nil
}

// objectAPIError turns a failed call on the target into the reason the user
// sees: Forbidden names the kind, the resource and the chart value that
// grants it.
func objectAPIError(verb string, m *Manifest, mapping *meta.RESTMapping, ns, name string, err error) *Error {
	if apierrors.IsForbidden(err) {
		gr := mapping.Resource.GroupResource()
		return fail(ReasonTargetForbidden, "the operator may not %s %s %q in namespace %s: grant it the resource %q of apiGroup %q with the chart value genericTargets.resources", verb, m.describe(), name, ns, gr.Resource, gr.Group)
	}
	return fail(ReasonWriteFailed, "%s %s %q: %v", verb, m.describe(), name, APIMessage(err))
}

// readObject reads the target from the API server; nil when there is none.
func (e *Engine) readObject(ctx context.Context, gvk schema.GroupVersionKind, key client.ObjectKey) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := e.APIReader.Get(ctx, key, u); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	return u, nil
}

// applyObject writes the desired content to a manifest target of any
// namespaced kind, with the decisions of applyConfigMap: create, update one
// it owns (or one annotated for adoption), delete one it owns when every
// remote value is gone and deletionPolicy is Delete, never write when
// nothing changed; every refusal leaves the object as it was.
func (e *Engine) applyObject(ctx context.Context, plan Plan, d *desired, res Result) (Result, error) {
	t, m := plan.Target, plan.Target.Manifest
	mapping, err := e.resolveKind(m)
	if err != nil {
		return res, err
	}
	gvk := mapping.GroupVersionKind
	key := client.ObjectKey{Namespace: plan.Owner.Namespace, Name: t.Name}
	cur, err := e.readObject(ctx, gvk, key)
	if err != nil {
		return res, objectAPIError("get", m, mapping, key.Namespace, key.Name, err)
	}
	if cur == nil {
		if d.gone {
			res.Gone = true
			return res, nil
		}
		obj := &unstructured.Unstructured{Object: map[string]any{}}
		if err := buildObject(obj, gvk, key, plan, d); err != nil {
			return res, err
		}
		res.Hash = objectHash(obj, d)
		setAnnotation(obj, AnnotationDataHash, res.Hash)
		err := e.Client.Create(ctx, obj)
		if err == nil {
			res.Created = true
			return res, nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return res, objectAPIError("create", m, mapping, key.Namespace, key.Name, err)
		}
		if cur, err = e.readObject(ctx, gvk, key); err != nil || cur == nil {
			return res, fail(ReasonWriteFailed, "reading %s %q after a create conflict: %v", m.describe(), key.Name, err)
		}
	}
	w := &manifestWrite{plan: plan, kind: m.Kind, current: cur, currentKeys: 1, gone: d.gone}
	if err := runManifestChecks(w, manifestClaimChecks); err != nil {
		return res, err
	}
	if d.gone && t.DeletionPolicy == esv1.DeletionPolicyDelete {
		uid, rv := cur.GetUID(), cur.GetResourceVersion()
		if err := e.Client.Delete(ctx, cur, client.Preconditions{UID: &uid, ResourceVersion: &rv}); err != nil && !apierrors.IsNotFound(err) {
			return res, objectAPIError("delete", m, mapping, key.Namespace, key.Name, err)
		}
		res.Deleted, res.Gone = true, true
		return res, nil
	}
	next := cur.DeepCopy()
	next.SetManagedFields(nil)
	if err := buildObject(next, gvk, key, plan, d); err != nil {
		return res, err
	}
	res.Hash = objectHash(next, d)
	w.nextKeys = len(d.data) + len(d.fields)
	if sameObjectContent(cur, next) && sameControlledMeta(cur, next) {
		return res, nil
	}
	if err := runManifestChecks(w, manifestChangeChecks); err != nil {
		return res, err
	}
	setAnnotation(next, AnnotationDataHash, res.Hash)
	if err := e.Client.Update(ctx, next); err != nil {
		return res, objectAPIError("update", m, mapping, key.Namespace, key.Name, err)
	}
	res.Updated = true
	return res, nil
}

// buildObject writes the plan's content and marks into obj (a copy of the
// current object, or an empty one), then restores its identity so no
// template path can move it.
func buildObject(obj *unstructured.Unstructured, gvk schema.GroupVersionKind, key client.ObjectKey, plan Plan, d *desired) error {
	if err := placeContent(obj.Object, plan, d); err != nil {
		return err
	}
	obj.SetGroupVersionKind(gvk)
	obj.SetNamespace(key.Namespace)
	obj.SetName(key.Name)
	markManaged(obj, plan, d)
	return nil
}

// placeContent writes the desired values into an object's fields as ESO
// does: without a template every key as a string under spec.data; with one,
// the keys rendered into Data under data and each path output at its path.
func placeContent(obj map[string]any, plan Plan, d *desired) error {
	strs, err := stringValues(plan.Target.Manifest.Kind, d.data)
	if err != nil {
		return err
	}
	if plan.Template == nil {
		spec, _ := obj["spec"].(map[string]any)
		if spec == nil {
			spec = map[string]any{}
		}
		spec["data"] = strs
		obj["spec"] = spec
		return nil
	}
	if d.rendersData {
		obj["data"] = strs
	}
	if n := pathElements(d.fields); n > render.MaxPathIndex+1 {
		return fail(ReasonInvalidSpec, "the template target paths name %d array elements in all; at most %d are allowed", n, render.MaxPathIndex+1)
	}
	for _, f := range d.fields {
		if len(f.Steps) > 0 && ReservedPathRoots[f.Steps[0].Key] {
			return fail(ReasonInvalidSpec, "a template target path starts with %q; keyferry sets an object's apiVersion, kind and metadata itself", f.Steps[0].Key)
		}
		if err := render.Place(obj, f.Steps, runtime.DeepCopyJSONValue(f.Value), f.Merge); err != nil {
			return fail(ReasonTemplateFailed, "placing template output in %s: %v", plan.Target.Manifest.describe(), err)
		}
	}
	return nil
}

// pathElements counts the array elements the fields' paths may create at
// most, so that many paths cannot together allocate without bound.
func pathElements(fields []render.Field) int {
	n := 0
	for _, f := range fields {
		for _, st := range f.Steps {
			if st.IsIndex {
				n += st.Index + 1
			}
		}
	}
	return n
}

// stringValues turns the keys into the strings an object's fields hold;
// a value that is not valid UTF-8 cannot be one (ConfigMaps have
// binaryData; other kinds do not).
func stringValues(kind string, data map[string][]byte) (map[string]any, error) {
	out := make(map[string]any, len(data))
	for _, k := range sortedKeys(data) {
		if !utf8.Valid(data[k]) {
			return nil, fail(ReasonInvalidValue, "key %q is not valid UTF-8; a %s target holds text only (use decodingStrategy or a template to encode it)", k, kind)
		}
		out[k] = string(data[k])
	}
	return out, nil
}

// content is the object without its metadata and status: what the write
// decides.
func content(obj *unstructured.Unstructured) ([]byte, error) {
	c := make(map[string]any, len(obj.Object))
	for k, v := range obj.Object {
		switch k {
		case "metadata", "status", "apiVersion", "kind":
			continue
		}
		c[k] = v
	}
	return json.Marshal(c)
}

// sameObjectContent compares two objects' content as JSON, so that numbers the
// API server returns as int64 equal the ones a template produced.
func sameObjectContent(a, b *unstructured.Unstructured) bool {
	ja, err1 := content(a)
	jb, err2 := content(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// objectHash is the data-hash annotation of an object target: a hash of
// its content and of the template's labels and annotations.
func objectHash(obj *unstructured.Unstructured, d *desired) string {
	j, _ := content(obj) // content of an object the API server served, or one built from JSON values
	h := sha256.Sum256(j)
	return Hash("", map[string][]byte{"": []byte(hex.EncodeToString(h[:]))}, d.labels, d.annotations)
}

func setAnnotation(obj *unstructured.Unstructured, k, v string) {
	anns := obj.GetAnnotations()
	if anns == nil {
		anns = map[string]string{}
	}
	anns[k] = v
	obj.SetAnnotations(anns)
}
