// Package v1alpha1 holds the Go types of the generators.external-secrets.io
// API that External Secrets Operator v2.9.0 serves: every generator kind,
// ClusterGenerator and GeneratorState. Field names, enums, defaults and
// validations follow ESO's so that existing manifests apply unchanged.
//
// Password, UUID, Fake, SSHKey, MFA, ECRAuthorizationToken, STSSessionToken,
// ACRAccessToken and Webhook have ESO's full schema; the other generator kinds keep
// their spec as an opaque object whose fields are all preserved, so any manifest ESO accepts is stored as written. Every
// generator kind (not GeneratorState, which an operator writes) has a
// keyferry status with conditions, where keyferry reports a kind it does not
// implement yet (Ready=False, reason Unsupported); ESO's generators have no
// status.
//
// +kubebuilder:object:generate=true
// +groupName=generators.external-secrets.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "generators.external-secrets.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this API with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this API to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
