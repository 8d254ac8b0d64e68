package externalsecret

import (
	"fmt"
	"strings"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/render"
)

// CompileOptions are the operator settings that change what Compile
// accepts.
type CompileOptions struct {
	// AllowGenericTargets accepts spec.target.manifest: targets other than
	// Secrets (--unsafe-allow-generic-targets, ESO's flag).
	AllowGenericTargets bool
}

// manifestCheck examines spec.target.manifest and says why keyferry
// refuses it (nil: accepted). Its reason and message go straight into the
// Ready condition and the Event.
type manifestCheck func(es *esv1.ExternalSecret, opts CompileOptions) *engine.Error

// manifestChecks decide, in order, whether a manifest target is accepted.
var manifestChecks = []manifestCheck{
	genericTargetsAllowed,
	manifestNamesAKind,
	manifestIsNotSecret,
	manifestImmutableOnlyConfigMap,
	manifestNeverMerges,
	manifestHasNoGenerators,
}

// compileManifest runs manifestChecks and returns the target's kind (nil
// for a Secret).
func compileManifest(es *esv1.ExternalSecret, opts CompileOptions) (*engine.Manifest, error) {
	m := es.Spec.Target.Manifest
	if m == nil {
		return nil, nil
	}
	for _, check := range manifestChecks {
		if err := check(es, opts); err != nil {
			return nil, err
		}
	}
	return &engine.Manifest{APIVersion: m.APIVersion, Kind: m.Kind}, nil
}

// genericTargetsAllowed: ESO writes other kinds than Secrets only when its
// operator runs with --unsafe-allow-generic-targets; so does keyferry.
func genericTargetsAllowed(es *esv1.ExternalSecret, opts CompileOptions) *engine.Error {
	if opts.AllowGenericTargets {
		return nil
	}
	m := es.Spec.Target.Manifest
	return &engine.Error{Reason: engine.ReasonGenericTargetsDisabled, Err: fmt.Errorf(
		"spec.target.manifest (%s %s): targets other than Secrets are off; the operator must run with --unsafe-allow-generic-targets (chart value genericTargets.enabled) to write them", m.APIVersion, m.Kind)}
}

// manifestNamesAKind: apiVersion (group/version, or v1) and kind are set.
// Whether the API server serves the kind, and whether it is namespaced,
// is decided at sync time (engine.ReasonTargetKindUnsupported).
func manifestNamesAKind(es *esv1.ExternalSecret, _ CompileOptions) *engine.Error {
	m := es.Spec.Target.Manifest
	if m.APIVersion == "" || m.Kind == "" {
		return invalidSpec("spec.target.manifest needs both apiVersion and kind")
	}
	if _, err := (&engine.Manifest{APIVersion: m.APIVersion, Kind: m.Kind}).TargetGVK(); err != nil {
		return invalidSpec("spec.target.manifest: %v", err)
	}
	return nil
}

// manifestIsNotSecret: a Secret target is spec.target without manifest,
// where every rule of Secrets applies.
func manifestIsNotSecret(es *esv1.ExternalSecret, _ CompileOptions) *engine.Error {
	m := es.Spec.Target.Manifest
	if m.APIVersion == "v1" && m.Kind == "Secret" {
		return invalidSpec("spec.target.manifest names v1 Secret: remove spec.target.manifest to write a Secret")
	}
	return nil
}

// manifestImmutableOnlyConfigMap: of the manifest kinds only a ConfigMap
// has an immutable field.
func manifestImmutableOnlyConfigMap(es *esv1.ExternalSecret, _ CompileOptions) *engine.Error {
	m := es.Spec.Target.Manifest
	if !es.Spec.Target.Immutable || (m.APIVersion == "v1" && m.Kind == "ConfigMap") {
		return nil
	}
	return invalidSpec("spec.target.immutable is not supported with spec.target.manifest %s %s: only a ConfigMap can be immutable", m.APIVersion, m.Kind)
}

// templateTarget reads spec.target.template.templateFrom[i].target: Data
// (the default), Labels or Annotations for a Secret or ConfigMap; for
// other manifest kinds also (as ESO) data, labels and annotations in any
// case, and a path such as spec.database or spec.rules[0].from[0].source
// (render.ParsePath), which may not start with apiVersion, kind or
// metadata.
func templateTarget(manifest *engine.Manifest, i int, raw string) (render.Target, error) {
	switch t := render.Target(raw); t {
	case "", render.TargetData:
		return render.TargetData, nil
	case render.TargetLabels, render.TargetAnnotations:
		return t, nil
	}
	if manifest == nil || manifest.IsConfigMap() {
		return "", invalidSpec("spec.target.template.templateFrom[%d].target %q: use Data, Labels or Annotations", i, raw)
	}
	for _, t := range []render.Target{render.TargetData, render.TargetLabels, render.TargetAnnotations} {
		if strings.EqualFold(raw, string(t)) {
			return t, nil
		}
	}
	steps, err := render.ParsePath(raw)
	if err != nil {
		return "", invalidSpec("spec.target.template.templateFrom[%d].target: %v", i, err)
	}
	if engine.ReservedPathRoots[steps[0].Key] {
		return "", invalidSpec("spec.target.template.templateFrom[%d].target %q: keyferry sets an object's apiVersion, kind and metadata itself (use Labels or Annotations)", i, raw)
	}
	return render.Target(raw), nil
}

// manifestNeverMerges: creationPolicy Merge and CreateOrMerge are not
// implemented for manifest targets.
func manifestNeverMerges(es *esv1.ExternalSecret, _ CompileOptions) *engine.Error {
	switch p := es.Spec.Target.CreationPolicy; p {
	case esv1.CreatePolicyMerge, esv1.CreatePolicyCreateOrMerge:
		return invalidSpec("spec.target.creationPolicy %s is not supported with spec.target.manifest: use Owner, Orphan or None", p)
	}
	return nil
}

// manifestHasNoGenerators: generated values are kept across syncs in the
// target Secret they were written to; a manifest target has no such
// record, so generators would make new values at every sync.
func manifestHasNoGenerators(es *esv1.ExternalSecret, _ CompileOptions) *engine.Error {
	for i, df := range es.Spec.DataFrom {
		if df.SourceRef != nil && df.SourceRef.GeneratorRef != nil {
			return invalidSpec("spec.dataFrom[%d].sourceRef.generatorRef is not supported with spec.target.manifest: generated values are kept only in a target Secret", i)
		}
	}
	return nil
}

func invalidSpec(format string, args ...any) *engine.Error {
	return &engine.Error{Reason: engine.ReasonInvalidSpec, Err: fmt.Errorf(format, args...)}
}
