// Package v1 holds the Go types of the external-secrets.io/v1 API that keyferry
// serves: SecretStore, ClusterSecretStore, ExternalSecret and
// ClusterExternalSecret. Field names, enums and defaults follow External Secrets
// Operator's v1 API so that existing manifests apply unchanged; keyferry's own
// extensions (such as the file provider) are additive.
//
// +kubebuilder:object:generate=true
// +groupName=external-secrets.io
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "external-secrets.io", Version: "v1"}

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
