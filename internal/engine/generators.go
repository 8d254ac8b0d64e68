package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/generator"
)

// Reasons of failures caused by a generator (docs/status.md).
const (
	// ReasonGeneratorNotFound: the generator object does not exist.
	ReasonGeneratorNotFound = "GeneratorNotFound"
	// ReasonGeneratorNotSupported: keyferry does not implement the
	// generator's kind yet.
	ReasonGeneratorNotSupported = "GeneratorNotSupported"
	// ReasonInvalidGeneratorSpec: the generator's spec cannot generate a
	// value; the message names the field.
	ReasonInvalidGeneratorSpec = "InvalidGeneratorSpec"
)

// generatorRetry is when a sync that failed because of its generator
// object is tried again: nothing watches generator objects, so a fixed
// generator is picked up by this retry.
const generatorRetry = time.Minute

// Kinds of generators keyferry runs.
const (
	GeneratorPassword = "Password"
	GeneratorUUID     = "UUID"
	GeneratorFake     = "Fake"
	GeneratorSSHKey   = "SSHKey"
	// GeneratorCluster is the cluster-scoped ClusterGenerator, which holds
	// the spec of one generator of another kind.
	GeneratorCluster = "ClusterGenerator"
)

// GeneratorSource maps the values a generator makes to keys. A generator
// makes new values at each run: they never go through the fetch layer's
// cache and are never shared with another object or source. Whether it runs
// at a sync or the values it made are kept from the Secret is decided by
// GenerateChecks over Plan.Generation.
type GeneratorSource struct {
	// Field names the spec field, for messages
	// ("spec.dataFrom[0].sourceRef.generatorRef").
	Field string
	// Kind and Name name the generator: a namespaced generator in the
	// owner's namespace, or a ClusterGenerator.
	Kind, Name string
	Rewrite    []Rewrite
}

// generated is the outcome of the generate decision for a plan: the values
// per generator source (in plan order), the record to write, and the
// decision.
type generated struct {
	values   []map[string][]byte
	record   GeneratedRecord
	decision GenerateDecision
	// rendered, when the values are kept and a template consumed them
	// (GeneratedRecord.Rendered), is the Secret's data: the record of the
	// values, kept as it is; values is then nil.
	rendered map[string][]byte
}

// generatorSources returns the plan's generator sources in order.
func generatorSources(plan Plan) []*GeneratorSource {
	var out []*GeneratorSource
	for _, src := range plan.Sources {
		if src.Generator != nil {
			out = append(out, src.Generator)
		}
	}
	return out
}

// generate decides, from the target Secret as the API server holds it now
// (never the cache, which may not show the last write yet), whether the
// plan's generators run; then either runs them or takes their last values
// from the Secret.
func (e *Engine) generate(ctx context.Context, plan Plan, now time.Time) (*generated, error) {
	srcs := generatorSources(plan)
	cur, err := e.unmanaged(ctx, client.ObjectKey{Namespace: plan.Owner.Namespace, Name: plan.Target.Name})
	if err != nil {
		return nil, fail(ReasonWriteFailed, "reading Secret %s: %v", plan.Target.Name, APIMessage(err))
	}
	in := GenerateInput{Now: now, Policy: plan.Generation, Sources: len(srcs), SecretFound: cur != nil}
	if cur != nil {
		in.SecretData = cur.Data
		if s, ok := cur.Annotations[AnnotationGenerated]; ok {
			in.Record, in.RecordErr = ParseGeneratedRecord(s)
		}
	}
	g := &generated{decision: DecideGenerate(in, GenerateChecks)}
	if !g.decision.Generate {
		g.record = *in.Record
		if in.Record.Rendered != nil {
			g.rendered = cur.Data
			return g, nil
		}
		for _, keys := range in.Record.Keys {
			m := make(map[string][]byte, len(keys))
			for _, k := range keys {
				m[k] = cur.Data[k]
			}
			g.values = append(g.values, m)
		}
		return g, nil
	}
	g.record = GeneratedRecord{Generation: plan.Generation.Generation, ForceSync: ForceSyncDigest(plan.Generation.ForceSync), At: now.UTC(), Keys: [][]string{}}
	for _, src := range srcs {
		m, err := e.runGenerator(ctx, plan.Owner.Namespace, src)
		if err != nil {
			return nil, err
		}
		if len(src.Rewrite) > 0 {
			rw := map[string][]byte{}
			if err := e.mergeMany(rw, m, "", "", "", src.Rewrite); err != nil {
				return nil, err
			}
			m = rw
		}
		g.values = append(g.values, m)
		g.record.Keys = append(g.record.Keys, sortedKeys(m))
	}
	return g, nil
}

// runGenerator reads the generator object and makes its values.
func (e *Engine) runGenerator(ctx context.Context, ns string, src *GeneratorSource) (map[string][]byte, error) {
	var (
		kind = src.Kind
		spec genv1alpha1.GeneratorSpec
		obj  client.Object
		key  = client.ObjectKey{Namespace: ns, Name: src.Name}
	)
	switch src.Kind {
	case GeneratorPassword:
		p := &genv1alpha1.Password{}
		obj, spec.PasswordSpec = p, &p.Spec
	case GeneratorUUID:
		u := &genv1alpha1.UUID{}
		obj, spec.UUIDSpec = u, &u.Spec
	case GeneratorFake:
		f := &genv1alpha1.Fake{}
		obj, spec.FakeSpec = f, &f.Spec
	case GeneratorSSHKey:
		k := &genv1alpha1.SSHKey{}
		obj, spec.SSHKeySpec = k, &k.Spec
	case GeneratorECRAuthorizationToken:
		g := &genv1alpha1.ECRAuthorizationToken{}
		obj, spec.ECRAuthorizationTokenSpec = g, &g.Spec
	case GeneratorSTSSessionToken:
		g := &genv1alpha1.STSSessionToken{}
		obj, spec.STSSessionTokenSpec = g, &g.Spec
	case GeneratorVaultDynamicSecret:
		obj = &genv1alpha1.VaultDynamicSecret{}
	case GeneratorWebhook:
		g := &genv1alpha1.Webhook{}
		obj, spec.WebhookSpec = g, &g.Spec
	case GeneratorACRAccessToken:
		g := &genv1alpha1.ACRAccessToken{}
		obj, spec.ACRAccessTokenSpec = g, &g.Spec
	case GeneratorGCRAccessToken:
		obj = &genv1alpha1.GCRAccessToken{}
	case GeneratorCluster:
		cg := &genv1alpha1.ClusterGenerator{}
		obj, key.Namespace = cg, ""
	default:
		return nil, generatorFail(ReasonGeneratorNotSupported, "%s: keyferry does not implement the %s generator yet (Password, UUID, Fake, SSHKey, ECRAuthorizationToken, STSSessionToken, VaultDynamicSecret, Webhook, ACRAccessToken and ClusterGenerator are)", src.Field, src.Kind)
	}
	what := src.Kind + " " + src.Name
	if err := e.APIReader.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			where := "in namespace " + ns
			if key.Namespace == "" {
				where = "(cluster-scoped)"
			}
			return nil, generatorFail(ReasonGeneratorNotFound, "%s: %s does not exist %s", src.Field, what, where)
		}
		return nil, fail(ReasonProviderError, "%s: reading %s: %v", src.Field, what, APIMessage(err))
	}
	if cg, ok := obj.(*genv1alpha1.ClusterGenerator); ok {
		kind, spec = string(cg.Spec.Kind), cg.Spec.Generator
		what = fmt.Sprintf("ClusterGenerator %s (kind %s)", src.Name, kind)
	}
	var (
		out map[string][]byte
		err error
	)
	switch {
	case kind == GeneratorPassword && spec.PasswordSpec != nil:
		out, err = generator.Password(*spec.PasswordSpec)
	case kind == GeneratorUUID && spec.UUIDSpec != nil:
		out, err = generator.UUID()
	case kind == GeneratorFake && spec.FakeSpec != nil:
		out = generator.Fake(*spec.FakeSpec)
	case kind == GeneratorSSHKey && spec.SSHKeySpec != nil:
		out, err = generator.SSHKey(*spec.SSHKeySpec)
	case isProviderGenerator(kind):
		return e.runProviderGenerator(ctx, ns, src, what, kind, spec, obj)
	case kind == GeneratorPassword || kind == GeneratorUUID || kind == GeneratorFake || kind == GeneratorSSHKey:
		return nil, generatorFail(ReasonInvalidGeneratorSpec, "%s: %s has no spec.generator.%s", src.Field, what, specField(kind))
	default:
		return nil, generatorFail(ReasonGeneratorNotSupported, "%s: %s: keyferry does not implement the %s generator yet (Password, UUID, Fake, SSHKey, ECRAuthorizationToken, STSSessionToken, VaultDynamicSecret, Webhook and ACRAccessToken are)", src.Field, what, kind)
	}
	if err != nil {
		var se *generator.SpecError
		if errors.As(err, &se) {
			return nil, generatorFail(ReasonInvalidGeneratorSpec, "%s: %s: %s: %s", src.Field, what, se.Field, se.Message)
		}
		return nil, fail(ReasonProviderError, "%s: %s: %v", src.Field, what, err)
	}
	return out, nil
}

// keepsGenerated checks that the Secret's data holds every generated value
// under its key: a template that drops or changes them would make the next
// sync generate anew, and a later source that overrides one would be read
// back as the generated value. A plan whose sources are all generators
// and whose template consumes their values (ESO's ECR example) passes:
// the rendered Secret is then the record of the values (record.Rendered),
// kept as it is until the GenerateChecks regenerate.
func keepsGenerated(plan Plan, data map[string][]byte, g *generated) error {
	for i, m := range g.values {
		for _, k := range g.record.Keys[i] {
			if v, ok := data[k]; !ok || !bytes.Equal(v, m[k]) {
				if plan.Template != nil && onlyGenerators(plan) {
					g.record.Rendered = sortedKeys(data)
					return nil
				}
				return fail(ReasonInvalidSpec, "the generated key %q is not in the Secret as generated (a template or a later entry replaces it): keep the generated keys, e.g. with spec.target.template.mergePolicy Merge", k)
			}
		}
	}
	return nil
}

// onlyGenerators says whether every source of plan is a generator: then
// nothing but a regeneration can change what its template renders.
func onlyGenerators(plan Plan) bool {
	for _, src := range plan.Sources {
		if src.Generator == nil {
			return false
		}
	}
	return true
}

func generatorFail(reason, format string, args ...any) *Error {
	e := fail(reason, format, args...)
	e.RetryAfter = generatorRetry
	return e
}

// specField is the ClusterGenerator field of a kind's spec, as ESO names
// it (passwordSpec, uuidSpec, fakeSpec).
func specField(kind string) string {
	return map[string]string{GeneratorPassword: "passwordSpec", GeneratorUUID: "uuidSpec", GeneratorFake: "fakeSpec", GeneratorSSHKey: "sshKeySpec"}[kind]
}
