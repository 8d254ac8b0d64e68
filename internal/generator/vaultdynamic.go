package generator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// KindVaultDynamicSecret is the kind whose spec ParseVaultDynamicSecret
// reads.
const KindVaultDynamicSecret = "VaultDynamicSecret"

// VaultDynamicSecret result types (spec.resultType): which part of Vault's
// answer becomes the values.
const (
	VaultResultData = "Data"
	VaultResultAuth = "Auth"
	VaultResultRaw  = "Raw"
)

// maxVaultSpecBytes bounds the spec ParseVaultDynamicSecret reads.
const maxVaultSpecBytes = 256 << 10

// VaultDynamicSecretSpec is ESO's VaultDynamicSecret spec, with ESO's
// field names and meanings. keyferry serves the kind with an opaque spec
// (apis/generators/v1alpha1), so the spec is read here from its JSON.
type VaultDynamicSecretSpec struct {
	// Controller selects the controller class (ESO's spec.controller).
	Controller string `json:"controller,omitempty"`
	// Method is the Vault API method: "" or GET reads (with
	// GetParameters as the query), LIST lists, DELETE deletes, any other
	// writes Parameters.
	Method string `json:"method,omitempty"`
	// Parameters is the JSON object written on write methods.
	Parameters json.RawMessage `json:"parameters,omitempty"`
	// GetParameters is the query string of a GET.
	GetParameters map[string][]string `json:"getParameters,omitempty"`
	// ResultType is Data (default), Auth or Raw.
	ResultType string `json:"resultType,omitempty"`
	// RetrySettings is accepted as in ESO; keyferry's engine retries.
	RetrySettings *esv1.SecretStoreRetrySettings `json:"retrySettings,omitempty"`
	// Provider is the Vault server and its auth, as a SecretStore's
	// spec.provider.vault.
	Provider *esv1.VaultProvider `json:"provider"`
	// Path is the API path, such as pki/issue/example-dot-com.
	Path string `json:"path"`
	// AllowEmptyResponse makes an answer without values no failure.
	AllowEmptyResponse bool `json:"allowEmptyResponse,omitempty"`
}

// VaultRead, VaultList, VaultDelete and VaultWrite say what Op does.
const (
	VaultRead   = "read"
	VaultList   = "list"
	VaultDelete = "delete"
	VaultWrite  = "write"
)

// Op is what Method asks of Vault: VaultRead, VaultList, VaultDelete or
// VaultWrite (ESO: every method other than GET, LIST and DELETE writes).
func (s *VaultDynamicSecretSpec) Op() string {
	switch strings.ToUpper(s.Method) {
	case "", "GET":
		return VaultRead
	case "LIST":
		return VaultList
	case "DELETE":
		return VaultDelete
	}
	return VaultWrite
}

// ParseVaultDynamicSecret reads a VaultDynamicSecret spec from its JSON.
// Anything a user can write is refused with a *SpecError naming the field,
// never a panic: unknown fields, a missing path or provider, parameters
// that are not a JSON object, an unknown resultType.
func ParseVaultDynamicSecret(raw []byte) (*VaultDynamicSecretSpec, error) {
	const kind = KindVaultDynamicSecret
	if len(raw) == 0 {
		return nil, specErrorf(kind, "spec", "is not set")
	}
	if len(raw) > maxVaultSpecBytes {
		return nil, specErrorf(kind, "spec", "is longer than %d bytes", maxVaultSpecBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var s VaultDynamicSecretSpec
	if err := dec.Decode(&s); err != nil {
		return nil, specErrorf(kind, "spec", "%s", jsonProblem(err))
	}
	if dec.More() {
		return nil, specErrorf(kind, "spec", "holds more than one JSON value")
	}
	switch {
	case strings.Trim(s.Path, "/") == "":
		return nil, specErrorf(kind, "spec.path", "is required")
	case s.Provider == nil:
		return nil, specErrorf(kind, "spec.provider", "is required: the Vault server and its auth")
	}
	switch s.ResultType {
	case "", VaultResultData, VaultResultAuth, VaultResultRaw:
	default:
		return nil, specErrorf(kind, "spec.resultType", "%q is not Data, Auth or Raw", s.ResultType)
	}
	if p := bytes.TrimSpace(s.Parameters); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
		var obj map[string]any
		if err := json.Unmarshal(p, &obj); err != nil {
			return nil, specErrorf(kind, "spec.parameters", "must be a JSON object")
		}
	}
	return &s, nil
}

// jsonProblem describes a decoding error without quoting the input (which
// may hold credentials): the field and type of a type error, the name of an
// unknown field, or the kind of syntax error.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Sprintf("field %s: a JSON %s where %s is expected", te.Field, te.Value, te.Type)
	case errors.As(err, &se):
		return fmt.Sprintf("not JSON (offset %d)", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	return "not a VaultDynamicSecret spec"
}
