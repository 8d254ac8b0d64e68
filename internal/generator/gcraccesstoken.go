package generator

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// KindGCRAccessToken is the kind whose spec ParseGCRAccessToken reads.
const KindGCRAccessToken = "GCRAccessToken"

// maxGCRSpecBytes bounds the spec ParseGCRAccessToken reads.
const maxGCRSpecBytes = 64 << 10

// GCRAccessTokenSpec is ESO's GCRAccessToken spec, with ESO's field names
// and meanings. keyferry serves the kind with an opaque spec
// (apis/generators/v1alpha1), so the spec is read here from its JSON.
type GCRAccessTokenSpec struct {
	// Auth is how the token is obtained, as a SecretStore's
	// spec.provider.gcpsm.auth: a service account key in a Secret
	// (secretRef), GKE workload identity (workloadIdentity), or, when
	// neither is set, the operator's application default credentials.
	Auth esv1.GCPSMAuth `json:"auth"`
	// ProjectID is the project the registry lives in.
	ProjectID string `json:"projectID"`
}

// ParseGCRAccessToken reads a GCRAccessToken spec from its JSON. Anything a
// user can write is refused with a *SpecError naming the field, never a
// panic: an empty or oversized spec, JSON that is not one object of the
// spec's shape, unknown fields. Whether the auth can work is the gcpsm
// provider's to say, as for a SecretStore.
func ParseGCRAccessToken(raw []byte) (*GCRAccessTokenSpec, error) {
	const kind = KindGCRAccessToken
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, specErrorf(kind, "spec", "is not set")
	}
	if len(raw) > maxGCRSpecBytes {
		return nil, specErrorf(kind, "spec", "is longer than %d bytes", maxGCRSpecBytes)
	}
	if t := bytes.TrimSpace(raw); t[0] != '{' {
		return nil, specErrorf(kind, "spec", "must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var s GCRAccessTokenSpec
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, specErrorf(kind, "spec", "is not complete JSON")
		}
		return nil, specErrorf(kind, "spec", "%s", jsonProblem(err))
	}
	if dec.More() {
		return nil, specErrorf(kind, "spec", "holds more than one JSON value")
	}
	return &s, nil
}
