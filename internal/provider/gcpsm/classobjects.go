// This file parses the parameters of a SecretProviderClass with provider
// gcp (GoogleCloudPlatform/secrets-store-csi-driver-provider-gcp): `auth`
// and the `secrets` list, each a Secret Manager version and the file name
// it is known by.

package gcpsm

import (
	"fmt"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/keyferry/keyferry/internal/provider"
)

// Values of the `auth` parameter.
const (
	// AuthPodADC authenticates as the SecretSync's ServiceAccount through
	// GKE workload identity (the GCP provider's default, "pod-adc").
	AuthPodADC = "pod-adc"
	// AuthProviderADC authenticates with the application default
	// credentials of the pod that reads the class: keyferry's own.
	AuthProviderADC = "provider-adc"
)

// maxSecretsLen bounds the `secrets` parameter keyferry parses.
const maxSecretsLen = 1 << 20

// ClassSecret is one entry of the `secrets` parameter.
type ClassSecret struct {
	// ResourceName is the version as written (resourceName).
	ResourceName string
	// Project, Location (empty for a global secret), Secret and Version
	// are the parts of ResourceName.
	Project, Location, Secret, Version string
	// File is the file name the version is known by: path, else fileName.
	File string
	// ExtractJSONKey and ExtractYAMLKey name a top-level key of a JSON or
	// YAML payload whose string value is the file's content instead.
	ExtractJSONKey, ExtractYAMLKey string
}

// Parent is the resource holding the secret: projects/P or
// projects/P/locations/L.
func (s ClassSecret) Parent() string { return parentName(s.Project, s.Location) }

// secretVersionName matches a Secret Manager version, global or regional,
// as the GCP provider accepts it (anchored here: nothing may precede
// "projects/").
var (
	secretVersionName    = regexp.MustCompile(`^projects/([^/]+)/(?:locations/([^/]+)/)?secrets/([^/]+)/versions/([^/]+)$`)
	parameterVersionName = regexp.MustCompile(`^projects/[^/]+/locations/[^/]+/parameters/[^/]+/versions/[^/]+$`)
	secretIDPattern      = regexp.MustCompile(`^[A-Za-z0-9_-]+$`) // and at most 255 long
	versionPattern       = regexp.MustCompile(`^[A-Za-z0-9_-]+$`) // and at most 63 long
)

// maxLocationLen is the GCP provider's limit on a location's length.
const maxLocationLen = 30

// ParseClassSecrets parses the `secrets` parameter: a YAML list of
// mappings with resourceName, path or fileName (path wins), and optionally
// extractJSONKey or extractYAMLKey. Unknown fields (mode) are ignored, as
// the GCP provider ignores them. Errors name the entry and the field, never
// quote the whole entry.
func ParseClassSecrets(s string) ([]ClassSecret, error) {
	return provider.ParseClassParam(classSecretsParam, s, parseClassSecrets)
}

// classSecretsParam is the `secrets` parameter for provider.ParseClassParam.
var classSecretsParam = provider.ClassParam{
	Name:    "parameters.secrets",
	MaxLen:  maxSecretsLen,
	IfEmpty: "parameters.secrets is required: list the Secret Manager versions (resourceName and path)",
}

// parseClassSecrets is ParseClassSecrets after provider.ParseClassParam's
// checks.
func parseClassSecrets(s string) (out []ClassSecret, err error) {
	var raw []struct {
		ResourceName   string `yaml:"resourceName"`
		FileName       string `yaml:"fileName"`
		Path           string `yaml:"path"`
		ExtractJSONKey string `yaml:"extractJSONKey"`
		ExtractYAMLKey string `yaml:"extractYAMLKey"`
	}
	if err := yaml.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("parameters.secrets is not a YAML list of secrets (%s)", provider.YAMLErrorLine(err))
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("parameters.secrets is empty: list the Secret Manager versions (resourceName and path)")
	}
	for i, r := range raw {
		sec := ClassSecret{
			ResourceName:   strings.TrimSpace(r.ResourceName),
			ExtractJSONKey: r.ExtractJSONKey,
			ExtractYAMLKey: r.ExtractYAMLKey,
			File:           strings.TrimSpace(r.Path),
		}
		if sec.File == "" {
			sec.File = strings.TrimSpace(r.FileName)
		}
		if err := parseResourceName(&sec); err != nil {
			return nil, fmt.Errorf("parameters.secrets[%d]: %v", i, err)
		}
		switch {
		case sec.File == "":
			return nil, fmt.Errorf("parameters.secrets[%d]: path (or fileName) is required", i)
		case !provider.ValidClassFilePath(sec.File):
			return nil, fmt.Errorf("parameters.secrets[%d]: path %q must be a relative file path (no '..', no leading '/')", i, sec.File)
		case sec.ExtractJSONKey != "" && sec.ExtractYAMLKey != "":
			return nil, fmt.Errorf("parameters.secrets[%d]: extractJSONKey and extractYAMLKey cannot both be set", i)
		}
		out = append(out, sec)
	}
	return out, nil
}

// parseResourceName fills the parts of s.ResourceName, or says why it is
// not a Secret Manager version keyferry reads.
func parseResourceName(s *ClassSecret) error {
	if s.ResourceName == "" {
		return fmt.Errorf("resourceName is required (projects/PROJECT/secrets/SECRET/versions/VERSION)")
	}
	m := secretVersionName.FindStringSubmatch(s.ResourceName)
	if m == nil {
		if parameterVersionName.MatchString(s.ResourceName) {
			return fmt.Errorf("resourceName %q is a Parameter Manager version, which keyferry does not read", s.ResourceName)
		}
		return fmt.Errorf("resourceName %q is not projects/PROJECT/secrets/SECRET/versions/VERSION or projects/PROJECT/locations/LOCATION/secrets/SECRET/versions/VERSION", s.ResourceName)
	}
	s.Project, s.Location, s.Secret, s.Version = m[1], m[2], m[3], m[4]
	switch {
	case !projectPattern.MatchString(s.Project):
		return fmt.Errorf("resourceName %q: %q is not a GCP project ID", s.ResourceName, s.Project)
	case s.Location != "" && (len(s.Location) > maxLocationLen || !locationPattern.MatchString(s.Location)):
		return fmt.Errorf("resourceName %q: %q is not a GCP location (for example us-central1)", s.ResourceName, s.Location)
	case len(s.Secret) > 255 || !secretIDPattern.MatchString(s.Secret):
		return fmt.Errorf("resourceName %q: %q is not a secret ID", s.ResourceName, s.Secret)
	case len(s.Version) > 63 || !versionPattern.MatchString(s.Version):
		return fmt.Errorf("resourceName %q: %q is not a version (a number, latest or an alias)", s.ResourceName, s.Version)
	}
	return nil
}
