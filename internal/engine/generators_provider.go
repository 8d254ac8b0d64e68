package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/generator"
	"github.com/keyferry/keyferry/internal/provider"
)

// Kinds of generators whose values come from a provider's API, with
// credentials (docs/generators.md).
const (
	GeneratorECRAuthorizationToken = "ECRAuthorizationToken"
	GeneratorSTSSessionToken       = "STSSessionToken"
	GeneratorVaultDynamicSecret    = "VaultDynamicSecret"
	GeneratorWebhook               = "Webhook"
	GeneratorACRAccessToken        = "ACRAccessToken"
	GeneratorGCRAccessToken        = "GCRAccessToken"
)

// providerGeneratorSpecs are the generator kinds run through a provider,
// with the ClusterGenerator field of their spec.
var providerGeneratorSpecs = map[string]string{
	GeneratorECRAuthorizationToken: "ecrAuthorizationTokenSpec",
	GeneratorSTSSessionToken:       "stsSessionTokenSpec",
	GeneratorVaultDynamicSecret:    "vaultDynamicSecretSpec",
	GeneratorWebhook:               "webhookSpec",
	GeneratorACRAccessToken:        "acrAccessTokenSpec",
	GeneratorGCRAccessToken:        "gcrAccessTokenSpec",
}

// isProviderGenerator says whether kind is run through a provider.
func isProviderGenerator(kind string) bool {
	_, ok := providerGeneratorSpecs[kind]
	return ok
}

// GeneratorStore is what a generator that needs credentials becomes for
// its provider: the spec of the store whose client would use the same
// credentials, and the request for the values.
type GeneratorStore struct {
	Spec    *esv1.SecretStoreSpec
	Request provider.GenerateRequest
	// Prefix is where the store spec holds the generator's fields
	// ("spec.provider.aws."): messages name them as the generator does
	// ("spec.").
	Prefix string
	// Words are further (old, new) pairs that name the store's fields as
	// the generator does, replaced before Prefix.
	Words []string
}

// GeneratorSpecError says a generator's spec lacks a field its provider
// needs; Field names it as in the generator ("spec.region").
type GeneratorSpecError struct {
	Field, Message string
}

func (e *GeneratorSpecError) Error() string { return e.Field + ": " + e.Message }

// GeneratorStoreFor maps a generator's spec to its store (pure, no I/O).
// The store holds the generator's credential fields only (the AWS
// generators' region, role and auth; VaultDynamicSecret's provider), so the
// rules of provider.Admit apply to them unchanged.
func GeneratorStoreFor(kind string, spec genv1alpha1.GeneratorSpec) (*GeneratorStore, error) {
	switch {
	case kind == GeneratorECRAuthorizationToken && spec.ECRAuthorizationTokenSpec != nil:
		g := spec.ECRAuthorizationTokenSpec.DeepCopy()
		if g.Region == "" {
			return nil, &GeneratorSpecError{Field: "spec.region", Message: "is required"}
		}
		return awsGeneratorStore(g.Region, g.Role, g.Auth, provider.GenerateRequest{Kind: kind, Spec: g}), nil
	case kind == GeneratorSTSSessionToken && spec.STSSessionTokenSpec != nil:
		g := spec.STSSessionTokenSpec.DeepCopy()
		if g.Region == "" {
			return nil, &GeneratorSpecError{Field: "spec.region", Message: "is required"}
		}
		if d := g.RequestParameters; d != nil && d.SessionDuration != nil && *d.SessionDuration < 0 {
			return nil, &GeneratorSpecError{Field: "spec.requestParameters.sessionDuration", Message: "must not be negative"}
		}
		return awsGeneratorStore(g.Region, g.Role, g.Auth, provider.GenerateRequest{Kind: kind, Spec: g}), nil
	case kind == GeneratorVaultDynamicSecret && spec.VaultDynamicSecretSpec != nil:
		g, err := generator.ParseVaultDynamicSecret(spec.VaultDynamicSecretSpec.Raw)
		if err != nil {
			var se *generator.SpecError
			if errors.As(err, &se) {
				return nil, &GeneratorSpecError{Field: se.Field, Message: se.Message}
			}
			return nil, err
		}
		return &GeneratorStore{
			Spec:    &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Vault: g.Provider}},
			Request: provider.GenerateRequest{Kind: kind, Spec: g},
			Prefix:  "spec.provider.vault.",
		}, nil
	case kind == GeneratorWebhook && spec.WebhookSpec != nil:
		return webhookGeneratorStore(spec.WebhookSpec)
	case kind == GeneratorACRAccessToken && spec.ACRAccessTokenSpec != nil:
		return acrGeneratorStore(spec.ACRAccessTokenSpec)
	case kind == GeneratorGCRAccessToken && spec.GCRAccessTokenSpec != nil:
		return gcrGeneratorStore(spec.GCRAccessTokenSpec)
	}
	if f, ok := providerGeneratorSpecs[kind]; ok {
		return nil, &GeneratorSpecError{Field: "spec.generator." + f, Message: "is not set"}
	}
	return nil, &GeneratorSpecError{Field: "spec", Message: fmt.Sprintf("%s is not a generator kind served by a provider", kind)}
}

func awsGeneratorStore(region, role string, auth esv1.AWSAuth, req provider.GenerateRequest) *GeneratorStore {
	return &GeneratorStore{
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{AWS: &esv1.AWSProvider{
			Region: region, Role: role, Auth: auth,
		}}},
		Request: req,
		Prefix:  "spec.provider.aws.",
	}
}

// webhookGeneratorStore maps ESO's Webhook generator to a webhook store
// with the same fields. The generator's secrets name Secrets of its own
// namespace only (its secretRef has no namespace), so the store's
// references never leave the generator's namespace (a ClusterGenerator's:
// the requester's). The keyferry extensions clientTLS and spiffe are not
// generator fields and stay unset.
func webhookGeneratorStore(g *genv1alpha1.WebhookSpec) (*GeneratorStore, error) {
	g = g.DeepCopy()
	if strings.TrimSpace(g.URL) == "" {
		return nil, &GeneratorSpecError{Field: "spec.url", Message: "is required"}
	}
	w := &esv1.WebhookProvider{
		Method:     g.Method,
		URL:        g.URL,
		Headers:    g.Headers,
		Body:       g.Body,
		Timeout:    g.Timeout,
		Result:     g.Result,
		CABundle:   g.CABundle,
		CAProvider: g.CAProvider,
	}
	if g.Auth != nil {
		w.Auth = &esv1.WebhookAuth{NTLM: g.Auth.NTLM}
	}
	for _, s := range g.Secrets {
		w.Secrets = append(w.Secrets, esv1.WebhookSecret{
			Name:      s.Name,
			SecretRef: esv1.SecretKeySelector{Name: s.SecretRef.Name, Key: s.SecretRef.Key},
		})
	}
	return &GeneratorStore{
		Spec:    &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: w}},
		Request: provider.GenerateRequest{Kind: GeneratorWebhook, Spec: g},
		Prefix:  "spec.provider.webhook.",
	}, nil
}

// generatorStoreObject is the store a generator's values are made through:
// a namespaced generator is a namespaced store in its own namespace (it
// never uses the operator's own identity unless the Policy grants that
// namespace, and its references resolve there only); a ClusterGenerator,
// which the platform team creates, is a cluster store used from the
// namespace of the ExternalSecret, as a ClusterSecretStore is.
func generatorStoreObject(kind, name, ns string, cluster bool, spec *esv1.SecretStoreSpec) provider.Store {
	if cluster {
		return provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: GeneratorCluster + "/" + name, Spec: spec}
	}
	return provider.Store{Kind: kind, Name: name, Namespace: ns, Spec: spec}
}

// runProviderGenerator makes the values of a generator that needs
// credentials through its provider. The values never go through the fetch
// layer's cache (fetch.Layer.Generate).
// obj is the generator object read (a ClusterGenerator, or the generator
// itself); spec holds its spec.
func (e *Engine) runProviderGenerator(ctx context.Context, ns string, src *GeneratorSource, what, kind string, spec genv1alpha1.GeneratorSpec, obj client.Object) (map[string][]byte, error) {
	_, cluster := obj.(*genv1alpha1.ClusterGenerator)
	if v, ok := obj.(*genv1alpha1.VaultDynamicSecret); ok {
		// Its spec is opaque JSON, known only once the object is read.
		if v.Spec == nil {
			return nil, generatorFail(ReasonInvalidGeneratorSpec, "%s: %s has no spec", src.Field, what)
		}
		spec.VaultDynamicSecretSpec = v.Spec
	}
	if gcrSpecOf(obj, &spec) && spec.GCRAccessTokenSpec == nil {
		return nil, generatorFail(ReasonInvalidGeneratorSpec, "%s: %s has no spec", src.Field, what)
	}
	gs, err := GeneratorStoreFor(kind, spec)
	if err != nil {
		return nil, generatorFail(ReasonInvalidGeneratorSpec, "%s: %s: %v", src.Field, what, err)
	}
	if e.Fetch == nil {
		return nil, fail(ReasonProviderError, "%s: %s: no fetch layer to reach the provider", src.Field, what)
	}
	store := generatorStoreObject(kind, src.Name, ns, cluster, gs.Spec)
	out, err := e.Fetch.Generate(ctx, fetch.Request{Store: store, Namespace: ns}, gs.Request)
	if err != nil {
		return nil, generatorProviderError(src.Field, what, gs.Prefix, err, gs.Words...)
	}
	return out, nil
}

// generatorWording turns the words of store messages into the generator's;
// words are (old, new) pairs tried before the others.
func generatorWording(prefix string, words ...string) *strings.Replacer {
	return strings.NewReplacer(append(append([]string(nil), words...),
		prefix, "spec.",
		"invalid store configuration: ", "",
		"in the store's namespace", "in the generator's namespace",
		"use a ClusterSecretStore", "use a ClusterGenerator",
	)...)
}

// generatorProviderError gives a provider's failure to generate its reason:
// the operator's identity refused, a spec that cannot work, a kind the
// provider does not make, or the provider's own failure (classify).
func generatorProviderError(field, what, prefix string, err error, words ...string) *Error {
	msg := generatorWording(prefix, words...).Replace(err.Error())
	var out *Error
	switch {
	case errors.Is(err, provider.ErrOperatorIdentity):
		out = generatorFail(ReasonOperatorIdentityNotAllowed, "%s: %s: %s", field, what, msg)
	case errors.Is(err, provider.ErrInvalidConfig):
		out = generatorFail(ReasonInvalidGeneratorSpec, "%s: %s: %s", field, what, msg)
	case errors.Is(err, provider.ErrNotSupported):
		out = generatorFail(ReasonGeneratorNotSupported, "%s: %s: %s", field, what, msg)
	default:
		c := classify(err)
		out = &Error{Reason: c.Reason, RetryAfter: c.RetryAfter, Err: fmt.Errorf("%s: %s: %s", field, what, msg)}
	}
	return out
}
