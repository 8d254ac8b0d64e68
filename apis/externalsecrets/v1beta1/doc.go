// Package v1beta1 lists external-secrets.io/v1beta1 in keyferry's CRDs as ESO
// v2.9.0's CRDs do: deprecated, not served and not stored. keyferry never
// reads or writes v1beta1; the version is there only because clusters that
// once ran ESO with v1beta1 as the storage version keep "v1beta1" in each
// CRD's status.storedVersions, and the API server rejects a CRD that drops a
// version still listed there. Its schema preserves every field. Objects
// that etcd still holds as v1beta1 are read through v1: like ESO's, these
// CRDs have no conversion webhook, so the API server only changes their
// apiVersion (and prunes and defaults them with the v1 schema).
//
// +kubebuilder:object:generate=true
// +groupName=external-secrets.io
package v1beta1

import "k8s.io/apimachinery/pkg/runtime/schema"

// GroupVersion is the group and version of this API.
var GroupVersion = schema.GroupVersion{Group: "external-secrets.io", Version: "v1beta1"}
