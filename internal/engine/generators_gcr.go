package engine

import (
	"errors"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/generator"
	"github.com/keyferry/keyferry/internal/provider"
)

// gcrGeneratorStore maps ESO's GCRAccessToken generator to a gcpsm store
// with the same auth (secretRef, workloadIdentity, workloadIdentityFederation)
// and projectID, so the rules of provider.Admit apply to it unchanged: a
// namespaced generator without auth, which in ESO would use the operator's
// application default credentials, is refused unless the Policy grants its
// namespace, and its references resolve in its namespace only. keyferry
// serves the kind with an opaque spec, read by generator.ParseGCRAccessToken.
func gcrGeneratorStore(raw *apiextensionsv1.JSON) (*GeneratorStore, error) {
	if raw == nil {
		return nil, &GeneratorSpecError{Field: "spec", Message: "is not set"}
	}
	g, err := generator.ParseGCRAccessToken(raw.Raw)
	if err != nil {
		var se *generator.SpecError
		if errors.As(err, &se) {
			return nil, &GeneratorSpecError{Field: se.Field, Message: se.Message}
		}
		return nil, err
	}
	return &GeneratorStore{
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{GCPSM: &esv1.GCPSMProvider{
			ProjectID: g.ProjectID,
			Auth:      *g.Auth.DeepCopy(),
		}}},
		Request: provider.GenerateRequest{Kind: GeneratorGCRAccessToken, Spec: g},
		Prefix:  "spec.provider.gcpsm.",
	}, nil
}

// gcrSpecOf puts the opaque spec of a GCRAccessToken object read from the
// API into spec, and says whether obj is one.
func gcrSpecOf(obj client.Object, spec *genv1alpha1.GeneratorSpec) bool {
	g, ok := obj.(*genv1alpha1.GCRAccessToken)
	if ok {
		spec.GCRAccessTokenSpec = g.Spec
	}
	return ok
}
