// This file parses the `objects` parameter of a SecretProviderClass with
// provider vault (hashicorp/vault-csi-provider): the Vault API paths a
// class reads, and the file name (objectName) each is known by.

package vault

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/keyferry/keyferry/internal/provider"
)

// Encodings of a secretKey's value (encoding): the value in Vault is text
// in that encoding and the decoded bytes are synchronized.
const (
	EncodingUTF8   = "utf-8"
	EncodingBase64 = "base64"
	EncodingHex    = "hex"
)

// maxObjectsLen bounds the `objects` parameter keyferry parses.
const maxObjectsLen = 1 << 20

// SPCObject is one entry of a SecretProviderClass's `objects` parameter
// (provider vault), after trimming and defaulting.
type SPCObject struct {
	// Name is the file name (objectName).
	Name string
	// Path is the Vault API path read, without /v1/ and without the query
	// (secretPath).
	Path string
	// Query holds the parameters after '?' in secretPath (GET only).
	Query url.Values
	// Key is the key of the response's data to write (secretKey); empty
	// writes the whole response as JSON.
	Key string
	// Method is GET (the default), PUT or POST (method).
	Method string
	// Args is the JSON body sent with PUT or POST (secretArgs).
	Args map[string]any
	// Encoding of Key's value: utf-8 (or empty), base64 or hex (encoding).
	Encoding string
}

// ParseClassObjects parses the `objects` parameter of a SecretProviderClass
// with provider vault: a YAML list of mappings with objectName, secretPath,
// and optionally secretKey, method, secretArgs and encoding. filePermission
// and unknown fields are ignored, as the Vault provider ignores them. Each
// objectName must be unique, as the Vault provider requires. Errors name
// the entry and the field, never quote the whole entry.
func ParseClassObjects(s string) ([]SPCObject, error) {
	return provider.ParseClassParam(classObjectsParam, s, parseClassObjects)
}

// classObjectsParam is the `objects` parameter for provider.ParseClassParam.
var classObjectsParam = provider.ClassParam{
	Name:    "parameters.objects",
	MaxLen:  maxObjectsLen,
	IfEmpty: "parameters.objects is required: list the Vault secrets (objectName and secretPath)",
}

// parseClassObjects is ParseClassObjects after provider.ParseClassParam's
// checks.
func parseClassObjects(s string) (out []SPCObject, err error) {
	var raw []struct {
		ObjectName string         `yaml:"objectName"`
		SecretPath string         `yaml:"secretPath"`
		SecretKey  string         `yaml:"secretKey"`
		Method     string         `yaml:"method"`
		SecretArgs map[string]any `yaml:"secretArgs"`
		Encoding   string         `yaml:"encoding"`
	}
	if err := yaml.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("parameters.objects is not a YAML list of objects (%s)", provider.YAMLErrorLine(err))
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("parameters.objects is empty: list the Vault secrets (objectName and secretPath)")
	}
	seen := map[string]int{}
	for i, r := range raw {
		o := SPCObject{
			Name:     strings.TrimSpace(r.ObjectName),
			Key:      r.SecretKey,
			Method:   strings.ToUpper(strings.TrimSpace(r.Method)),
			Args:     r.SecretArgs,
			Encoding: strings.ToLower(strings.TrimSpace(r.Encoding)),
		}
		if o.Method == "" {
			o.Method = http.MethodGet
		}
		if err := parseSecretPath(&o, strings.TrimSpace(r.SecretPath)); err != nil {
			return nil, fmt.Errorf("parameters.objects[%d]: %v", i, err)
		}
		if err := validateObject(o); err != nil {
			return nil, fmt.Errorf("parameters.objects[%d]: %v", i, err)
		}
		if j, dup := seen[o.Name]; dup {
			return nil, fmt.Errorf("parameters.objects[%d] and [%d] have the same objectName %q: each objectName must be unique", j, i, o.Name)
		}
		seen[o.Name] = i
		out = append(out, o)
	}
	return out, nil
}

// parseSecretPath splits secretPath as the Vault provider reads it: an API
// path with or without its /v1/ prefix, and a query after '?'.
func parseSecretPath(o *SPCObject, p string) error {
	if p == "" {
		return fmt.Errorf("secretPath is required")
	}
	path, query, hasQuery := strings.Cut(p, "?")
	switch {
	case strings.HasPrefix(path, "/v1/"):
		path = path[len("/v1/"):]
	case strings.HasPrefix(path, "v1/"):
		path = path[len("v1/"):]
	default:
		path = strings.TrimPrefix(path, "/")
	}
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return fmt.Errorf("secretPath %q names no Vault path", p)
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.ContainsAny(seg, "\\\x00#") {
			return fmt.Errorf("secretPath %q is not a Vault API path (empty, '.' or '..' segments)", p)
		}
	}
	o.Path = path
	if hasQuery {
		q, err := url.ParseQuery(query)
		if err != nil {
			return fmt.Errorf("secretPath %q: the query is not valid", p)
		}
		o.Query = q
	}
	return nil
}

// validateObject checks one object as the Vault provider does, plus what
// keyferry does not do.
func validateObject(o SPCObject) error {
	switch {
	case o.Name == "":
		return fmt.Errorf("objectName is required")
	case !provider.ValidClassFilePath(o.Name):
		return fmt.Errorf("objectName %q must be a relative file path (no '..', no leading '/')", o.Name)
	}
	switch o.Method {
	case http.MethodGet:
		if o.Args != nil {
			return fmt.Errorf("object %q: secretArgs needs method PUT or POST", o.Name)
		}
	case http.MethodPut, http.MethodPost:
		if len(o.Query) > 0 {
			return fmt.Errorf("object %q: a query in secretPath is supported with method GET only", o.Name)
		}
		if _, err := json.Marshal(o.Args); err != nil {
			return fmt.Errorf("object %q: secretArgs cannot be sent as JSON (keys must be strings)", o.Name)
		}
	default:
		return fmt.Errorf("object %q: method %q is not GET, PUT or POST", o.Name, o.Method)
	}
	switch o.Encoding {
	case "", EncodingUTF8, EncodingBase64, EncodingHex:
	default:
		return fmt.Errorf("object %q: encoding %q is not utf-8, base64 or hex", o.Name, o.Encoding)
	}
	return nil
}
