package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/engine/render"
	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/metrics"
	"github.com/keyferry/keyferry/internal/provider"
)

// Engine executes plans.
type Engine struct {
	// Client reads stores, namespaces and managed Secrets from the cache and
	// writes Secrets.
	Client client.Client
	// APIReader reads what the cache does not hold (Secrets keyferry does not
	// manage, ConfigMaps for templateFrom).
	APIReader client.Reader
	Fetch     *fetch.Layer
	Registry  *provider.Registry
	// Metrics counts Secret writes; nil counts nothing.
	Metrics *metrics.Metrics
	// Templates renders templates within a size and time budget on a
	// bounded pool shared by every sync; nil gives each render a sandbox
	// of its own with the default limits (no shared pool).
	Templates *render.Sandbox
	// ControllerClass is this keyferry's controller class
	// (--controller-class); stores of another class are not used
	// (HandlesStore).
	ControllerClass string
	// DisableClusterStores refuses ClusterSecretStores without reading them
	// (--enable-cluster-store-reconciler=false).
	DisableClusterStores bool
	// OnSecretWritten, when set, is called after each Secret write (the
	// operator's start-up trace).
	OnSecretWritten func()
	// Now is the clock of generator decisions; nil is time.Now.
	Now func() time.Time
}

// Result is what a sync did. It holds key names and a hash, never values.
type Result struct {
	SecretName string
	// Hash of the desired Secret content.
	Hash string
	// Keys of the Secret's data written by this plan.
	Keys []string
	// Created, Updated and Deleted say what was written.
	Created, Updated, Deleted bool
	// SecretRV is the target Secret's resourceVersion after the sync, as
	// the API server answered the write (or as read, when nothing was
	// written); empty for other target kinds and when there is no Secret.
	SecretRV string
	// Gone says every remote value is gone and, by deletionPolicy, there
	// is no Secret.
	Gone bool
	// Generated says the plan's generators made new values; GenerateReason
	// says why they did or why their last values were kept (GenerateChecks;
	// empty without generator sources).
	Generated      bool
	GenerateReason string
	// RegenerateAt, when set, is when the refresh interval makes the
	// generators run again.
	RegenerateAt time.Time
}

// Changed says whether the Secret was written.
func (r Result) Changed() bool { return r.Created || r.Updated || r.Deleted }

type desired struct {
	// gen is the generate decision and the generated values, nil without
	// generator sources.
	gen         *generated
	data        map[string][]byte
	labels      map[string]string
	annotations map[string]string
	// fields are template outputs placed at a path of a manifest target
	// that is not a Secret or ConfigMap (manifest_object.go); rendersData
	// says a template item rendered into data.
	fields      []render.Field
	rendersData bool
	// missing counts sources whose remote value is gone (deletionPolicy
	// Delete/Merge); gone says every source was.
	gone bool
}

// Execute runs a plan: fetch, render, apply.
func (e *Engine) Execute(ctx context.Context, plan Plan) (Result, error) {
	res := Result{SecretName: plan.Target.Name}
	d, err := e.build(ctx, plan)
	if err != nil {
		return res, err
	}
	if d.gen != nil {
		res.Generated, res.GenerateReason = d.gen.decision.Generate, d.gen.decision.Reason
		if plan.Generation.Interval > 0 {
			res.RegenerateAt = d.gen.record.At.Add(plan.Generation.Interval)
		}
	}
	res.Hash = Hash(plan.Target.Type, d.data, d.labels, d.annotations)
	res.Keys = sortedKeys(d.data)
	if plan.Target.CreationPolicy == esv1.CreatePolicyNone {
		return res, nil
	}
	res, err = e.apply(ctx, plan, d, res)
	if res.Changed() && e.OnSecretWritten != nil {
		e.OnSecretWritten()
	}
	if e.Metrics != nil {
		for op, done := range map[string]bool{"create": res.Created, "update": res.Updated, "delete": res.Deleted} {
			if done {
				e.Metrics.SecretWrites.WithLabelValues(op).Inc()
			}
		}
	}
	return res, err
}

// build fetches every source and renders the template.
func (e *Engine) build(ctx context.Context, plan Plan) (*desired, error) {
	tolerateGone := plan.Target.DeletionPolicy == esv1.DeletionPolicyDelete || plan.Target.DeletionPolicy == esv1.DeletionPolicyMerge
	data := map[string][]byte{}
	stores := map[StoreRef]fetch.Request{}
	goneCount := 0
	// Group data refs by store so one sync makes one (batch) request per store.
	for _, src := range plan.Sources {
		if src.Generator != nil {
			continue
		}
		if _, ok := stores[src.Store]; ok {
			continue
		}
		req, err := e.request(ctx, plan, src.Store)
		if err != nil {
			return nil, err
		}
		stores[src.Store] = req
	}
	refsByStore := map[StoreRef][]provider.Ref{}
	for _, src := range plan.Sources {
		switch {
		case src.Data != nil:
			refsByStore[src.Store] = append(refsByStore[src.Store], src.Data.Ref)
		case src.Extract != nil:
			refsByStore[src.Store] = append(refsByStore[src.Store], src.Extract.Ref)
		}
	}
	fetched := map[StoreRef]map[provider.Ref]provider.Value{}
	fetchErrs := map[StoreRef]map[provider.Ref]error{}
	for st, refs := range refsByStore {
		fetched[st], fetchErrs[st] = e.Fetch.Get(ctx, stores[st], refs)
	}
	// Generated values bypass the fetch layer: they are made (or kept from
	// the Secret) for this plan alone.
	var gen *generated
	if len(generatorSources(plan)) > 0 {
		var err error
		if gen, err = e.generate(ctx, plan, e.now()); err != nil {
			return nil, err
		}
		if gen.rendered != nil {
			// A template consumed the kept values: the Secret as it is
			// is their record (keepsGenerated).
			return &desired{gen: gen, data: gen.rendered, labels: map[string]string{},
				annotations: map[string]string{AnnotationGenerated: gen.record.String()}}, nil
		}
	}
	genIndex := 0
	for _, src := range plan.Sources {
		switch {
		case src.Generator != nil:
			for k, v := range gen.values[genIndex] {
				data[k] = v
			}
			genIndex++
		case src.Data != nil:
			ds := src.Data
			v, err := lookup(fetched, fetchErrs, src.Store, ds.Ref)
			if err != nil {
				if tolerateGone && errors.Is(err, provider.ErrNotFound) {
					goneCount++
					continue
				}
				return nil, wrapSource(err, "fetching %s for key %q", ds.Ref, ds.SecretKey)
			}
			b, err := values.Property(v, ds.Property)
			if err != nil {
				if tolerateGone && errors.Is(err, values.ErrPropertyNotFound) {
					goneCount++
					continue
				}
				return nil, wrapSource(err, "reading %s for key %q", ds.Ref, ds.SecretKey)
			}
			if b, err = values.Decode(b, ds.Decoding); err != nil {
				return nil, fail(ReasonInvalidValue, "key %q: %v", ds.SecretKey, err)
			}
			if err := values.CheckNullBytes(ds.SecretKey, b, ds.NullBytePolicy); err != nil {
				return nil, fail(ReasonInvalidValue, "%v", err)
			}
			data[ds.SecretKey] = b
		case src.Extract != nil:
			x := src.Extract
			v, err := lookup(fetched, fetchErrs, src.Store, x.Ref)
			if err != nil {
				if tolerateGone && errors.Is(err, provider.ErrNotFound) {
					goneCount++
					continue
				}
				return nil, wrapSource(err, "extracting %s", x.Ref)
			}
			m, err := values.Extract(v, x.Property)
			if err != nil {
				return nil, wrapSource(err, "extracting %s", x.Ref)
			}
			if err := e.mergeMany(data, m, x.Decoding, x.Conversion, x.NullBytePolicy, x.Rewrite); err != nil {
				return nil, err
			}
		case src.Find != nil:
			f := src.Find
			m, err := e.Fetch.Find(ctx, stores[src.Store], f.Find)
			if err != nil {
				return nil, wrapSource(err, "finding secrets")
			}
			if len(m) == 0 && tolerateGone {
				goneCount++
			}
			if err := e.mergeMany(data, m, f.Decoding, f.Conversion, f.NullBytePolicy, f.Rewrite); err != nil {
				return nil, err
			}
		}
	}
	d := &desired{data: data, labels: map[string]string{}, annotations: map[string]string{}}
	d.gone = goneCount > 0 && len(data) == 0 && goneCount == len(plan.Sources)
	// Keys named by the spec or by remote names may be quoted in an error;
	// keys a template rendered may be derived from values and never are.
	named := map[string]bool{}
	for k := range d.data {
		named[k] = true
	}
	if plan.Template != nil {
		if err := e.renderTemplate(ctx, plan, d); err != nil {
			return nil, err
		}
	}
	if err := checkKeys(d.data, named); err != nil {
		return nil, err
	}
	if gen != nil {
		if err := keepsGenerated(plan, d.data, gen); err != nil {
			return nil, err
		}
		d.gen = gen
		if d.annotations == nil {
			d.annotations = map[string]string{}
		}
		d.annotations[AnnotationGenerated] = gen.record.String()
	}
	return d, nil
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func lookup(vals map[StoreRef]map[provider.Ref]provider.Value, errs map[StoreRef]map[provider.Ref]error, st StoreRef, r provider.Ref) (provider.Value, error) {
	if err, ok := errs[st][r]; ok {
		return provider.Value{}, err
	}
	if v, ok := vals[st][r]; ok {
		return v, nil
	}
	return provider.Value{}, fmt.Errorf("%w: %s", provider.ErrNotFound, r)
}

func wrapSource(err error, format string, args ...any) *Error {
	c := classify(err)
	c.Err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
	return c
}

func (e *Engine) mergeMany(dst, m map[string][]byte, dec esv1.ExternalSecretDecodingStrategy, conv esv1.ExternalSecretConversionStrategy, nb esv1.ExternalSecretNullBytePolicy, rws []Rewrite) error {
	m, err := e.rewrite(m, rws)
	if err != nil {
		return err
	}
	for k, v := range m {
		b, err := values.Decode(v, dec)
		if err != nil {
			return fail(ReasonInvalidValue, "key %q: %v", k, err)
		}
		key := values.ConvertKey(k, conv)
		if err := values.CheckNullBytes(key, b, nb); err != nil {
			return fail(ReasonInvalidValue, "%v", err)
		}
		dst[key] = b
	}
	return nil
}

// rewrite applies the rewrite steps in order, each to the output of the
// one before (ESO): consecutive key renames (regexp, transform) together,
// a merge to the whole map.
func (e *Engine) rewrite(m map[string][]byte, rws []Rewrite) (map[string][]byte, error) {
	var pending []values.Rewriter
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		var err error
		m, err = values.Rewrite(m, pending)
		pending = nil
		if err != nil {
			return fail(ReasonInvalidSpec, "%v", err)
		}
		return nil
	}
	for _, rw := range rws {
		if rw.Merge != nil {
			if err := flush(); err != nil {
				return nil, err
			}
			var err error
			if m, err = values.Merge(m, *rw.Merge); err != nil {
				// The remote values are not what the merge needs (not JSON
				// objects, conflicting fields, a missing priority key).
				return nil, fail(ReasonInvalidValue, "%v", err)
			}
			continue
		}
		r, err := e.rewriter(rw)
		if err != nil {
			return nil, fail(ReasonInvalidSpec, "%v", err)
		}
		pending = append(pending, r)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return m, nil
}

func (e *Engine) rewriter(rw Rewrite) (values.Rewriter, error) {
	if rw.Merge != nil {
		return nil, errors.New("a merge rewrite works on every key at once, not on one key")
	}
	if rw.Transform != "" {
		return func(k string) (string, error) {
			out, err := e.sandbox().Render(context.Background(), []render.Item{{Key: "k", Template: rw.Transform, Source: "rewrite.transform"}}, map[string][]byte{"value": []byte(k)})
			if err != nil {
				return "", err
			}
			return string(out.Data["k"]), nil
		}, nil
	}
	return values.RegexpRewriter(rw.RegexpSource, rw.RegexpTarget)
}

// renderTemplate applies the plan's template to d.
func (e *Engine) renderTemplate(ctx context.Context, plan Plan, d *desired) error {
	t := plan.Template
	items := append([]render.Item(nil), t.Items...)
	for _, from := range t.From {
		more, err := e.templateFrom(ctx, plan.Owner.Namespace, from)
		if err != nil {
			return err
		}
		items = append(items, more...)
	}
	out, err := e.sandbox().Render(ctx, items, d.data)
	if err != nil {
		return templateError(err)
	}
	rendersData := false
	for _, it := range items {
		if it.Target == "" || it.Target == render.TargetData {
			rendersData = true
			break
		}
	}
	if rendersData {
		if t.MergeFetched {
			for k, v := range out.Data {
				d.data[k] = v
			}
		} else {
			d.data = out.Data
		}
	}
	d.labels, d.annotations = out.Labels, out.Annotations
	d.fields, d.rendersData = out.Fields, rendersData
	return nil
}

func (e *Engine) templateFrom(ctx context.Context, ns string, from TemplateFrom) ([]render.Item, error) {
	var get func(key string) (string, bool)
	var src string
	switch {
	case from.ConfigMap != "":
		src = "configmap " + from.ConfigMap
		var cm corev1.ConfigMap
		if err := e.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: from.ConfigMap}, &cm); err != nil {
			return nil, fail(ReasonTemplateFailed, "reading templateFrom %s: %v", src, err)
		}
		get = func(key string) (string, bool) { v, ok := cm.Data[key]; return v, ok }
	case from.Secret != "":
		src = "secret " + from.Secret
		var s corev1.Secret
		if err := e.APIReader.Get(ctx, client.ObjectKey{Namespace: ns, Name: from.Secret}, &s); err != nil {
			return nil, fail(ReasonTemplateFailed, "reading templateFrom %s: %v", src, err)
		}
		get = func(key string) (string, bool) { v, ok := s.Data[key]; return string(v), ok }
	default:
		return nil, fail(ReasonInvalidSpec, "templateFrom names neither a configMap nor a secret")
	}
	var items []render.Item
	for _, it := range from.Items {
		text, ok := get(it.Key)
		if !ok {
			return nil, fail(ReasonTemplateFailed, "templateFrom %s has no key %q", src, it.Key)
		}
		items = append(items, render.Item{Key: it.Key, Template: text, KeysAndValues: it.KeysAndValues, Target: from.Target, Source: src + "/" + it.Key})
	}
	return items, nil
}

// Hash is the hash of a Secret's desired content.
func Hash(t corev1.SecretType, data map[string][]byte, lbls, anns map[string]string) string {
	h := sha256.New()
	h.Write([]byte(t))
	h.Write([]byte{0})
	for _, k := range sortedKeys(data) {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(data[k])
		h.Write([]byte{0})
	}
	for _, m := range []map[string]string{lbls, anns} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			h.Write([]byte(k + "\x00" + m[k] + "\x00"))
		}
		h.Write([]byte{1})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
