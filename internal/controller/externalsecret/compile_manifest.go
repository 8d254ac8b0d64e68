package externalsecret

import (
	"fmt"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
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
	manifestIsConfigMap,
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

// manifestIsConfigMap: keyferry writes v1 ConfigMaps; other kinds are not
// implemented yet.
func manifestIsConfigMap(es *esv1.ExternalSecret, _ CompileOptions) *engine.Error {
	m := es.Spec.Target.Manifest
	if m.APIVersion == "v1" && m.Kind == "ConfigMap" {
		return nil
	}
	return invalidSpec("spec.target.manifest (%s %s) is not supported by keyferry: only apiVersion v1, kind ConfigMap", m.APIVersion, m.Kind)
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
// target Secret they were written to; a ConfigMap target has no such
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
