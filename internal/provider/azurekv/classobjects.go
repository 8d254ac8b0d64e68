// This file parses the `objects` parameter of a SecretProviderClass with
// provider azure (the Azure provider of the Secrets Store CSI driver): the
// Key Vault objects a class provides, and the file name each is known by.

package azurekv

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/keyferry/keyferry/internal/provider"
)

// Encodings of a secret's value (objectEncoding): the value in Key Vault is
// text in that encoding and the decoded bytes are synchronized.
const (
	EncodingUTF8   = "utf-8"
	EncodingHex    = "hex"
	EncodingBase64 = "base64"
)

// Formats of a certificate-backed secret (objectFormat).
const (
	FormatPEM = "pem"
	FormatPFX = "pfx"
)

// maxObjectsLen bounds the `objects` parameter keyferry parses (the whole
// SecretProviderClass is far smaller in practice; etcd caps objects at 1.5MB).
const maxObjectsLen = 1 << 20

// SPCObject is one entry of a SecretProviderClass's `objects` parameter
// (provider azure), after trimming and defaulting.
type SPCObject struct {
	// Name is the Key Vault object name (objectName).
	Name string
	// Type is secret, key or cert (objectType).
	Type string
	// Version pins a version (objectVersion); empty means the latest.
	Version string
	// VersionHistory is how many versions to synchronize, newest first
	// (objectVersionHistory); 0 and 1 mean only the one version.
	VersionHistory int
	// Alias is the file name the object is known by (objectAlias); empty
	// means Name.
	Alias string
	// Encoding is the encoding of a secret's value (objectEncoding): empty
	// or utf-8 (as it is), hex or base64.
	Encoding string
	// Format is pem or pfx for a certificate-backed secret (objectFormat).
	Format string
}

// FileName is the name sourcePath uses for the object: its alias, or its
// name.
func (o SPCObject) FileName() string {
	if o.Alias != "" {
		return o.Alias
	}
	return o.Name
}

// Files returns the sourcePaths the object provides: its file name, or with
// objectVersionHistory > 1, "<file name>/0" (the newest) to
// "<file name>/<history-1>".
func (o SPCObject) Files() []string {
	if o.VersionHistory <= 1 {
		return []string{o.FileName()}
	}
	out := make([]string, o.VersionHistory)
	for i := range out {
		out[i] = o.FileName() + "/" + strconv.Itoa(i)
	}
	return out
}

// vaultObjectName is what Key Vault allows in a secret, key or certificate
// name.
var vaultObjectName = regexp.MustCompile(`^[0-9A-Za-z-]+$`) // and at most 127 long

// ParseClassObjects parses the `objects` parameter of a SecretProviderClass with
// provider azure: a YAML document whose `array` lists the objects, each
// either a YAML document in a string (the documented form, `- |`) or a
// mapping. Unknown fields are ignored, as the Azure provider ignores them;
// values are trimmed. Errors name the entry and the field, and quote only
// names, never a whole entry.
func ParseClassObjects(s string) ([]SPCObject, error) {
	return provider.ParseClassParam(classObjectsParam, s, parseClassObjects)
}

// classObjectsParam is the `objects` parameter for provider.ParseClassParam.
var classObjectsParam = provider.ClassParam{
	Name:    "objects",
	MaxLen:  maxObjectsLen,
	IfEmpty: "objects is empty: list the Key Vault objects under `array`",
}

// parseClassObjects is ParseClassObjects after provider.ParseClassParam's
// checks.
func parseClassObjects(s string) (objs []SPCObject, err error) {
	root, err := parseMapping(s)
	if err != nil {
		return nil, fmt.Errorf("objects: %v", err)
	}
	var arr *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if provider.ResolveYAMLAlias(root.Content[i]).Value == "array" {
			arr = provider.ResolveYAMLAlias(root.Content[i+1])
		}
	}
	if arr == nil || arr.Tag == "!!null" {
		return nil, fmt.Errorf("objects has no `array`: list the Key Vault objects under `array`")
	}
	if arr.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("objects: `array` is not a list")
	}
	if len(arr.Content) == 0 {
		return nil, fmt.Errorf("objects: `array` is empty")
	}
	for i, item := range arr.Content {
		o, err := parseObject(item)
		if err != nil {
			return nil, fmt.Errorf("objects: array[%d]: %v", i, err)
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// parseMapping parses a YAML document that must be a mapping.
func parseMapping(s string) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		return nil, fmt.Errorf("not valid YAML (%s)", provider.YAMLErrorLine(err))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("not a YAML mapping")
	}
	n := provider.ResolveYAMLAlias(doc.Content[0])
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a YAML mapping")
	}
	return n, nil
}

// parseObject reads one entry: a string holding a YAML mapping, or a
// mapping.
func parseObject(item *yaml.Node) (SPCObject, error) {
	item = provider.ResolveYAMLAlias(item)
	var m *yaml.Node
	switch item.Kind {
	case yaml.ScalarNode:
		var err error
		if m, err = parseMapping(item.Value); err != nil {
			return SPCObject{}, err
		}
	case yaml.MappingNode:
		m = item
	default:
		return SPCObject{}, fmt.Errorf("not a YAML mapping")
	}
	var o SPCObject
	var history string
	fields := map[string]*string{
		"objectName":           &o.Name,
		"objectType":           &o.Type,
		"objectVersion":        &o.Version,
		"objectVersionHistory": &history,
		"objectAlias":          &o.Alias,
		"objectEncoding":       &o.Encoding,
		"objectFormat":         &o.Format,
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		key := provider.ResolveYAMLAlias(m.Content[i])
		dst, ok := fields[key.Value]
		if !ok || key.Kind != yaml.ScalarNode {
			continue // filePermission and unknown fields
		}
		v := provider.ResolveYAMLAlias(m.Content[i+1])
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			*dst = ""
		case v.Kind == yaml.ScalarNode:
			*dst = strings.TrimSpace(v.Value)
		default:
			return SPCObject{}, fmt.Errorf("%s is not a single value", key.Value)
		}
	}
	if history != "" {
		n, err := strconv.ParseInt(history, 10, 32)
		if err != nil || n < 0 {
			return SPCObject{}, fmt.Errorf("objectVersionHistory must be a whole number of versions (0 or more)")
		}
		o.VersionHistory = int(n)
	}
	o.Type = strings.ToLower(o.Type)
	o.Encoding = strings.ToLower(o.Encoding)
	o.Format = strings.ToLower(o.Format)
	if strings.EqualFold(o.Version, "latest") {
		o.Version = ""
	}
	if err := validateObject(o); err != nil {
		return SPCObject{}, err
	}
	return o, nil
}

// validateObject checks one object as the Azure provider does, plus what
// keyferry cannot do.
func validateObject(o SPCObject) error {
	switch {
	case o.Name == "":
		return fmt.Errorf("objectName is required")
	case len(o.Name) > 127 || !vaultObjectName.MatchString(o.Name):
		return fmt.Errorf("objectName %q is not a Key Vault object name (1-127 letters, digits and dashes)", o.Name)
	}
	switch o.Type {
	case objectSecret, objectKey, objectCert:
	case "":
		return fmt.Errorf("object %q: objectType is required (secret, key or cert)", o.Name)
	default:
		return fmt.Errorf("object %q: objectType %q is not secret, key or cert", o.Name, o.Type)
	}
	switch o.Encoding {
	case "", EncodingUTF8:
	case EncodingHex, EncodingBase64:
		if o.Type != objectSecret {
			return fmt.Errorf("object %q: objectEncoding is only supported for objectType secret", o.Name)
		}
	default:
		return fmt.Errorf("object %q: objectEncoding %q is not utf-8, hex or base64", o.Name, o.Encoding)
	}
	switch o.Format {
	case "":
	case FormatPEM, FormatPFX:
		if o.Type != objectSecret {
			return fmt.Errorf("object %q: objectFormat is only supported for objectType secret", o.Name)
		}
	default:
		return fmt.Errorf("object %q: objectFormat %q is not pem or pfx", o.Name, o.Format)
	}
	if o.Version != "" && !validVersion(o.Version) {
		return fmt.Errorf("object %q: objectVersion %q is not a Key Vault version identifier", o.Name, o.Version)
	}
	if o.Alias != "" && !validFileName(o.Alias) {
		return fmt.Errorf("object %q: objectAlias %q must be a file name (no '/', not '.' or '..')", o.Name, o.Alias)
	}
	if o.VersionHistory > 1 && o.Version != "" {
		return fmt.Errorf("object %q: objectVersion with objectVersionHistory is not supported by keyferry: remove objectVersion to synchronize the newest versions", o.Name)
	}
	return nil
}

var versionID = regexp.MustCompile(`^[0-9A-Za-z]+$`) // and at most 64 long

func validVersion(v string) bool { return len(v) <= 64 && versionID.MatchString(v) }

func validFileName(s string) bool {
	return s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00") && strings.TrimSpace(s) == s && len(s) <= 253
}
