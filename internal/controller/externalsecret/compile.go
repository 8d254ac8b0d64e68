// Package externalsecret is the ExternalSecret front-end: it compiles an
// ExternalSecret into an engine.Plan (a pure step), decides when a refresh
// is due, runs the engine and reports the result in the ExternalSecret's
// status and Events.
package externalsecret

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/render"
	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
)

// DefaultRefreshInterval is ESO's default.
const DefaultRefreshInterval = time.Hour

// Compile turns an ExternalSecret into a plan with the default options
// (CompileWith).
func Compile(es *esv1.ExternalSecret) (engine.Plan, error) {
	return CompileWith(es, CompileOptions{})
}

// CompileWith turns an ExternalSecret into a plan. It does no I/O; its
// errors are *engine.Error with reason InvalidSpec (or
// GenericTargetsDisabled) and say which field is wrong.
func CompileWith(es *esv1.ExternalSecret, opts CompileOptions) (engine.Plan, error) {
	spec := &es.Spec
	t := spec.Target
	manifest, err := compileManifest(es, opts) // compile_manifest.go
	if err != nil {
		return engine.Plan{}, err
	}
	if spec.SyncWindows != nil {
		return engine.Plan{}, invalid("spec.syncWindows is not supported by keyferry yet")
	}
	if err := spec.FieldErrors(); err != nil {
		return engine.Plan{}, invalid("%v", err)
	}
	if len(spec.Data) == 0 && len(spec.DataFrom) == 0 && (t.Template == nil || (len(t.Template.Data) == 0 && len(t.Template.TemplateFrom) == 0)) {
		return engine.Plan{}, invalid("spec.data, spec.dataFrom and spec.target.template are all empty: there is nothing to write")
	}
	owner := engine.Owner{
		APIVersion: esv1.GroupVersion.String(), Kind: Kind,
		Namespace: es.Namespace, Name: es.Name, UID: es.UID,
	}
	plan := engine.Plan{
		Owner: owner,
		Target: engine.Target{
			Name:           t.Name,
			CreationPolicy: t.CreationPolicy,
			DeletionPolicy: t.DeletionPolicy,
			Immutable:      t.Immutable,
			ManagedBy:      owner.Ref().ManagedBy(),
			Manifest:       manifest,
		},
		MaxAge:     RefreshInterval(es),
		Generation: generation(es),
	}
	if plan.Target.Name == "" {
		plan.Target.Name = es.Name
	}
	if why := engine.NameRefusal(es.Namespace, plan.Target.Name); why != "" {
		return engine.Plan{}, invalid("spec.target.name %q: %s", plan.Target.Name, why)
	}
	if plan.Target.CreationPolicy == "" {
		plan.Target.CreationPolicy = esv1.CreatePolicyOwner
	}
	if plan.Target.DeletionPolicy == "" {
		plan.Target.DeletionPolicy = esv1.DeletionPolicyRetain
	}
	plan.Target.SetOwnerReference = plan.Target.CreationPolicy == esv1.CreatePolicyOwner
	switch {
	case plan.Target.DeletionPolicy == esv1.DeletionPolicyDelete && plan.Target.CreationPolicy == esv1.CreatePolicyMerge:
		return engine.Plan{}, invalid("deletionPolicy Delete cannot be combined with creationPolicy Merge (keyferry never deletes a Secret it did not create)")
	case plan.Target.DeletionPolicy == esv1.DeletionPolicyMerge && plan.Target.CreationPolicy == esv1.CreatePolicyNone:
		return engine.Plan{}, invalid("deletionPolicy Merge cannot be combined with creationPolicy None")
	}

	for i, d := range spec.Data {
		if d.SourceRef != nil && d.SourceRef.GeneratorRef != nil {
			return engine.Plan{}, invalid("spec.data[%d].sourceRef.generatorRef: generators are not implemented in spec.data[] (ESO deprecated the field there): use spec.dataFrom[].sourceRef.generatorRef", i)
		}
		st := storeRef(spec.SecretStoreRef, d.SourceRef)
		if st.Name == "" {
			return engine.Plan{}, invalid("spec.data[%d]: no store: set spec.secretStoreRef or spec.data[%d].sourceRef.storeRef", i, i)
		}
		if d.RemoteRef.Key == "" {
			return engine.Plan{}, invalid("spec.data[%d].remoteRef.key is empty", i)
		}
		plan.Sources = append(plan.Sources, engine.Source{Store: st, Data: &engine.DataSource{
			SecretKey:      d.SecretKey,
			Ref:            remoteRef(d.RemoteRef.Key, d.RemoteRef.Version, d.RemoteRef.MetadataPolicy),
			Property:       d.RemoteRef.Property,
			Decoding:       d.RemoteRef.DecodingStrategy,
			NullBytePolicy: d.RemoteRef.NullBytePolicy,
		}})
	}
	for i, df := range spec.DataFrom {
		rws, err := rewrites(i, df.Rewrite)
		if err != nil {
			return engine.Plan{}, err
		}
		if df.SourceRef != nil && df.SourceRef.GeneratorRef != nil {
			src, err := generatorSource(i, df, rws)
			if err != nil {
				return engine.Plan{}, err
			}
			plan.Sources = append(plan.Sources, engine.Source{Generator: src})
			continue
		}
		st := storeRef(spec.SecretStoreRef, df.SourceRef)
		if st.Name == "" {
			return engine.Plan{}, invalid("spec.dataFrom[%d]: no store: set spec.secretStoreRef or spec.dataFrom[%d].sourceRef.storeRef", i, i)
		}
		switch {
		case df.Extract != nil && df.Find != nil:
			return engine.Plan{}, invalid("spec.dataFrom[%d] sets both extract and find: set one", i)
		case df.Extract != nil:
			x := df.Extract
			if x.Key == "" {
				return engine.Plan{}, invalid("spec.dataFrom[%d].extract.key is empty", i)
			}
			plan.Sources = append(plan.Sources, engine.Source{Store: st, Extract: &engine.ExtractSource{
				Ref: remoteRef(x.Key, x.Version, x.MetadataPolicy), Property: x.Property,
				Decoding: x.DecodingStrategy, Conversion: x.ConversionStrategy, NullBytePolicy: x.NullBytePolicy, Rewrite: rws,
			}})
		case df.Find != nil:
			f := df.Find
			pf := provider.Find{Tags: f.Tags}
			if f.Path != nil {
				pf.Path = *f.Path
			}
			if f.Name != nil {
				if _, err := regexp.Compile(f.Name.RegExp); err != nil {
					return engine.Plan{}, invalid("spec.dataFrom[%d].find.name.regexp %q: %v", i, f.Name.RegExp, err)
				}
				pf.Name = f.Name.RegExp
			}
			if pf.Name == "" && pf.Path == "" && len(pf.Tags) == 0 {
				return engine.Plan{}, invalid("spec.dataFrom[%d].find selects nothing: set name, path or tags", i)
			}
			plan.Sources = append(plan.Sources, engine.Source{Store: st, Find: &engine.FindSource{
				Find: pf, Decoding: f.DecodingStrategy, Conversion: f.ConversionStrategy, NullBytePolicy: f.NullBytePolicy, Rewrite: rws,
			}})
		default:
			return engine.Plan{}, invalid("spec.dataFrom[%d] sets neither extract nor find", i)
		}
	}

	if tpl := t.Template; tpl != nil {
		if tpl.EngineVersion != "" && tpl.EngineVersion != esv1.TemplateEngineV2 {
			return engine.Plan{}, invalid("spec.target.template.engineVersion %q is not supported: use v2", tpl.EngineVersion)
		}
		if manifest == nil {
			// ESO ignores template.type for manifest targets.
			plan.Target.Type = corev1.SecretType(tpl.Type)
		}
		if why := engine.TypeRefusal(es.Namespace, plan.Target.Type); why != "" {
			return engine.Plan{}, invalid("spec.target.template.type %q: %s", tpl.Type, why)
		}
		for _, k := range sortedKeys(tpl.Metadata.Annotations) {
			if why := engine.AnnotationRefusal(k); why != "" {
				return engine.Plan{}, invalid("spec.target.template.metadata.annotations[%q]: %s", k, why)
			}
		}
		pt := &engine.Template{MergeFetched: tpl.MergePolicy == esv1.MergePolicyMerge}
		for _, k := range sortedKeys(tpl.Data) {
			pt.Items = append(pt.Items, render.Item{Key: k, Template: tpl.Data[k], Source: "spec.target.template.data." + k})
		}
		for _, k := range sortedKeys(tpl.Metadata.Labels) {
			pt.Items = append(pt.Items, render.Item{Key: k, Template: tpl.Metadata.Labels[k], Target: render.TargetLabels, Source: "spec.target.template.metadata.labels." + k})
		}
		for _, k := range sortedKeys(tpl.Metadata.Annotations) {
			pt.Items = append(pt.Items, render.Item{Key: k, Template: tpl.Metadata.Annotations[k], Target: render.TargetAnnotations, Source: "spec.target.template.metadata.annotations." + k})
		}
		for i, tf := range tpl.TemplateFrom {
			target, err := templateTarget(manifest, i, string(tf.Target)) // compile_manifest.go
			if err != nil {
				return engine.Plan{}, err
			}
			switch {
			case tf.Literal != nil:
				pt.Items = append(pt.Items, render.Item{Template: *tf.Literal, KeysAndValues: true, Target: target, Source: fmt.Sprintf("spec.target.template.templateFrom[%d].literal", i)})
			case tf.ConfigMap != nil || tf.Secret != nil:
				from := engine.TemplateFrom{Target: target}
				ref := tf.ConfigMap
				if ref != nil {
					from.ConfigMap = ref.Name
				} else {
					ref = tf.Secret
					from.Secret = ref.Name
				}
				for _, it := range ref.Items {
					from.Items = append(from.Items, engine.TemplateFromItem{Key: it.Key, KeysAndValues: it.TemplateAs == esv1.TemplateScopeKeysAndValues})
				}
				pt.From = append(pt.From, from)
			default:
				return engine.Plan{}, invalid("spec.target.template.templateFrom[%d] sets none of configMap, secret and literal", i)
			}
		}
		for _, it := range pt.Items {
			if err := render.Validate(it.Source, it.Template); err != nil {
				return engine.Plan{}, invalid("%v", err)
			}
		}
		plan.Template = pt
	}
	return plan, nil
}

func rewrites(i int, rws []esv1.ExternalSecretRewrite) ([]engine.Rewrite, error) {
	var out []engine.Rewrite
	for j, rw := range rws {
		switch {
		case rw.Regexp != nil:
			if _, err := regexp.Compile(rw.Regexp.Source); err != nil {
				return nil, invalid("spec.dataFrom[%d].rewrite[%d].regexp.source %q: %v", i, j, rw.Regexp.Source, err)
			}
			out = append(out, engine.Rewrite{RegexpSource: rw.Regexp.Source, RegexpTarget: rw.Regexp.Target})
		case rw.Transform != nil:
			if err := render.Validate("rewrite", rw.Transform.Template); err != nil {
				return nil, invalid("spec.dataFrom[%d].rewrite[%d].transform: %v", i, j, err)
			}
			out = append(out, engine.Rewrite{Transform: rw.Transform.Template})
		case rw.Merge != nil:
			m, err := mergeRewrite(rw.Merge)
			if err != nil {
				return nil, invalid("spec.dataFrom[%d].rewrite[%d].merge.%v", i, j, err)
			}
			out = append(out, engine.Rewrite{Merge: m})
		default:
			return nil, invalid("spec.dataFrom[%d].rewrite[%d] sets neither regexp, transform nor merge", i, j)
		}
	}
	return out, nil
}

// mergeRewrite checks a rewrite.merge and applies ESO's defaults (strategy
// Extract, conflictPolicy Error, priorityPolicy Strict); an error names the
// field within merge.
func mergeRewrite(m *esv1.ExternalSecretRewriteMerge) (*values.MergeOptions, error) {
	o := &values.MergeOptions{Strategy: m.Strategy, Into: m.Into, Priority: m.Priority, PriorityPolicy: m.PriorityPolicy, ConflictPolicy: m.ConflictPolicy}
	if o.Strategy == "" {
		o.Strategy = values.MergeStrategyExtract
	}
	if o.ConflictPolicy == "" {
		o.ConflictPolicy = values.MergeConflictError
	}
	if o.PriorityPolicy == "" {
		o.PriorityPolicy = values.MergePriorityStrict
	}
	switch {
	case o.Strategy != values.MergeStrategyExtract && o.Strategy != values.MergeStrategyJSON:
		return nil, fmt.Errorf("strategy %q is not Extract or JSON", o.Strategy)
	case o.ConflictPolicy != values.MergeConflictError && o.ConflictPolicy != values.MergeConflictIgnore:
		return nil, fmt.Errorf("conflictPolicy %q is not Error or Ignore", o.ConflictPolicy)
	case o.PriorityPolicy != values.MergePriorityStrict && o.PriorityPolicy != values.MergePriorityIgnoreNotFound:
		return nil, fmt.Errorf("priorityPolicy %q is not Strict or IgnoreNotFound", o.PriorityPolicy)
	case o.Strategy == values.MergeStrategyJSON && o.Into == "":
		return nil, errors.New("into: strategy JSON merges into this key; it is required")
	case o.Strategy == values.MergeStrategyJSON && !values.ValidKey(o.Into):
		return nil, fmt.Errorf("into: %q is not a valid Secret key", o.Into)
	}
	return o, nil
}

// remoteRef is the provider ref of a remoteRef or extract: with
// metadataPolicy Fetch it reads the remote secret's metadata (tags, labels,
// custom metadata) instead of its value, cached apart from the value.
func remoteRef(key, version string, policy esv1.ExternalSecretMetadataPolicy) provider.Ref {
	return provider.Ref{Key: key, Version: version, Metadata: policy == esv1.MetadataPolicyFetch}
}

func storeRef(def esv1.SecretStoreRef, src *esv1.StoreSourceRef) engine.StoreRef {
	r := def
	if src != nil && src.SecretStoreRef.Name != "" {
		r = src.SecretStoreRef
	}
	kind := r.Kind
	if kind == "" {
		kind = esv1.SecretStoreKind
	}
	return engine.StoreRef{Kind: kind, Name: r.Name}
}

// RefreshInterval returns the ExternalSecret's refresh interval; 0 means
// never refresh on a timer.
func RefreshInterval(es *esv1.ExternalSecret) time.Duration {
	if es.Spec.RefreshInterval == nil {
		return DefaultRefreshInterval
	}
	return es.Spec.RefreshInterval.Duration
}

func invalid(format string, args ...any) error {
	return &engine.Error{Reason: engine.ReasonInvalidSpec, Err: fmt.Errorf(format, args...)}
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
