// Package v1alpha1 holds the Go types of the external-secrets.io/v1alpha1 API
// that External Secrets Operator v2.9.0 serves: PushSecret and
// ClusterPushSecret. Field names, enums, defaults and validations follow ESO's
// so that existing manifests apply unchanged. keyferry installs and serves
// these kinds; until it implements pushing, its unsupported controller
// (internal/controller/unsupported) reports them Ready=False with reason
// Unsupported.
//
// +kubebuilder:object:generate=true
// +groupName=external-secrets.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "external-secrets.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Kinds of this API.
const (
	PushSecretKind        = "PushSecret"
	ClusterPushSecretKind = "ClusterPushSecret"
)
