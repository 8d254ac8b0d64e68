// Package v1beta1 lists external-secrets.io/v1beta1 in keyferry's CRDs as ESO
// v2.9.0's CRDs do: deprecated, not stored, and not served unless the chart's
// crds.unsafeServeV1Beta1 (ESO's value of the same name) asks for it.
//
// The version is there because clusters that once ran ESO with v1beta1 as
// the storage version keep "v1beta1" in each CRD's status.storedVersions, and
// the API server rejects a CRD that drops a version still listed there; and
// so that manifests still written as v1beta1 apply where the platform serves
// it. Each kind's schema is v1's: every field of ESO's v1beta1 that keyferry
// implements has the same name and meaning in v1, so the API server validates
// a v1beta1 object as strictly as a v1 one and, like ESO's CRDs (no conversion
// webhook), only changes its apiVersion. keyferry itself reads and writes v1
// only; these types exist for the CRD generator.
//
// +kubebuilder:object:generate=true
// +groupName=external-secrets.io
package v1beta1

import "k8s.io/apimachinery/pkg/runtime/schema"

// GroupVersion is the group and version of this API.
var GroupVersion = schema.GroupVersion{Group: "external-secrets.io", Version: "v1beta1"}
