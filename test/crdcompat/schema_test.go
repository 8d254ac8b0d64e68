// Package crdcompat checks that keyferry's CRDs accept everything External
// Secrets Operator v2.9.0's CRDs let users store: a field-by-field comparison
// of the generated schemas (no cluster needed), and a test on the real API
// server that replaces ESO's CRDs with keyferry's in a cluster that once
// stored v1beta1, then runs the operator on the objects ESO's schema allowed.
package crdcompat

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyferry/keyferry/internal/devcluster"
)

// servedFiles are the CRDs of the ESO kinds keyferry serves in v1 (and
// lists, unserved, in v1beta1); alphaFiles are the others.
var servedFiles = []string{
	"external-secrets.io_secretstores.yaml",
	"external-secrets.io_clustersecretstores.yaml",
	"external-secrets.io_externalsecrets.yaml",
	"external-secrets.io_clusterexternalsecrets.yaml",
}

// alphaFiles are the CRDs of the ESO kinds that exist only in v1alpha1
// (PushSecret, ClusterPushSecret, the generators, GeneratorState): keyferry
// serves them all so that a repository written for ESO applies whole, and
// reports the kinds it does not implement yet as Unsupported. A file
// missing from ESO's directory is skipped (the shared reference holds only
// the Password generator; KEYFERRY_ESO_CRDS can point at all of ESO's
// config/crds/bases).
var alphaFiles = []string{
	"external-secrets.io_pushsecrets.yaml",
	"external-secrets.io_clusterpushsecrets.yaml",
	"generators.external-secrets.io_acraccesstokens.yaml",
	"generators.external-secrets.io_beyondtrustworkloadcredentialsdynamicsecrets.yaml",
	"generators.external-secrets.io_cloudsmithaccesstokens.yaml",
	"generators.external-secrets.io_clustergenerators.yaml",
	"generators.external-secrets.io_ecrauthorizationtokens.yaml",
	"generators.external-secrets.io_fakes.yaml",
	"generators.external-secrets.io_gcraccesstokens.yaml",
	"generators.external-secrets.io_generatorstates.yaml",
	"generators.external-secrets.io_githubaccesstokens.yaml",
	"generators.external-secrets.io_gitlabdeploytokens.yaml",
	"generators.external-secrets.io_grafanas.yaml",
	"generators.external-secrets.io_mfas.yaml",
	"generators.external-secrets.io_passwords.yaml",
	"generators.external-secrets.io_quayaccesstokens.yaml",
	"generators.external-secrets.io_sshkeys.yaml",
	"generators.external-secrets.io_stssessiontokens.yaml",
	"generators.external-secrets.io_uuids.yaml",
	"generators.external-secrets.io_vaultdynamicsecrets.yaml",
	"generators.external-secrets.io_webhooks.yaml",
}

// keyferryExtensions are the property paths keyferry adds to ESO's API;
// additive, so they cannot make an ESO object fail.
var keyferryExtensions = map[string]bool{
	".spec.provider.file":              true,
	".spec.provider.webhook.clientTLS": true,
	".spec.provider.webhook.spiffe":    true,
}

// extensionsOf returns the property paths keyferry adds to the CRD in file:
// keyferryExtensions, plus .status on every generator kind (ESO's
// generators have none; keyferry reports Unsupported there).
func extensionsOf(file string) map[string]bool {
	ext := maps.Clone(keyferryExtensions)
	if strings.HasPrefix(file, "generators.external-secrets.io_") && file != "generators.external-secrets.io_generatorstates.yaml" {
		ext[".status"] = true
	}
	return ext
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := devcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// EnvESOCRDs names the directory holding ESO v2.9.0's CRDs; by default
// ../shared/reference/eso-v2.9.0-crds beside the repository.
const EnvESOCRDs = "KEYFERRY_ESO_CRDS"

// esoDir returns the directory of ESO's CRDs, or skips the test when there
// is none.
func esoDir(t testing.TB, root string) string {
	t.Helper()
	dir := os.Getenv(EnvESOCRDs)
	if dir == "" {
		dir = filepath.Join(filepath.Dir(root), "shared", "reference", "eso-v2.9.0-crds")
	}
	if _, err := os.Stat(filepath.Join(dir, servedFiles[0])); err != nil {
		t.Skipf("ESO v2.9.0's CRDs not found (set %s): %v", EnvESOCRDs, err)
	}
	return dir
}

func readCRD(t testing.TB, path string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading CRD: %v", err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(b, crd); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return crd
}

func version(crd *apiextensionsv1.CustomResourceDefinition, name string) *apiextensionsv1.CustomResourceDefinitionVersion {
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Name == name {
			return &crd.Spec.Versions[i]
		}
	}
	return nil
}

// TestCRDsMatchESO compares every field of keyferry's CRDs with ESO
// v2.9.0's: for every property path keyferry has, the same type (including
// int-or-string and format), enum values, default, required list and
// nullability; no ESO property missing where keyferry's schema would prune
// it; ESO providers keyferry does not implement kept as opaque objects that
// preserve every field; no validation stricter than ESO's; and the same
// versions, names and scope, so replacing ESO's CRDs with keyferry's is
// accepted and every object ESO's schema allowed decodes in keyferry.
func TestCRDsMatchESO(t *testing.T) {
	root := repoRoot(t)
	for _, file := range slices.Concat(servedFiles, alphaFiles) {
		t.Run(strings.TrimSuffix(file, ".yaml"), func(t *testing.T) {
			esoFile := filepath.Join(esoDir(t, root), file)
			if _, err := os.Stat(esoFile); err != nil {
				t.Skipf("ESO's CRD is not in the reference directory (set %s to ESO's config/crds/bases): %v", EnvESOCRDs, err)
			}
			eso := readCRD(t, esoFile)
			kf := readCRD(t, filepath.Join(root, "config", "crd", file))
			d := drifts{extensions: extensionsOf(file)}
			compareCRDs(&d, eso, kf)
			for _, msg := range d.errs {
				t.Error(msg)
			}
			if len(d.looser) > 0 {
				// Not an error: keyferry accepts more than ESO there, which
				// never makes an ESO object fail. Listed for the record.
				t.Logf("%d validations ESO has and keyferry does not (keyferry is more lenient there), e.g. %s", len(d.looser), d.looser[0])
			}
			if len(d.opaque) > 0 {
				// Not an error either: keyferry keeps these objects whole,
				// so it accepts (and stores) everything ESO's schema does,
				// with none of its validations or defaults.
				t.Logf("%d objects keyferry keeps opaque (every field preserved, none validated or defaulted): %s", len(d.opaque), strings.Join(d.opaque, ", "))
			}
		})
	}
}

type drifts struct {
	// extensions are the property paths keyferry adds (extensionsOf).
	extensions map[string]bool
	errs       []string
	looser     []string
	// opaque are the paths keyferry keeps as preserve-unknown-fields
	// objects where ESO has a schema.
	opaque []string
	// accepting compares an older ESO version (v1beta1) with keyferry's
	// schema for it, which is v1's: keyferry must accept what ESO's
	// accepts, and may know more fields and enum values. known lists the
	// differences that are expected (knownV1beta1Differences).
	accepting bool
	known     map[string]bool
}

// knownV1beta1Differences are where keyferry's v1beta1 (v1's schema) refuses
// or prunes what ESO v2.9.0's v1beta1 accepts: the providers ESO dropped in
// v1 (keyferry implements neither), and the kubernetes provider's auth
// fields that ESO's v1 made required (a store without them cannot work).
// docs/migrate-from-eso.md says so.
var knownV1beta1Differences = map[string]bool{
	".spec.provider.alibaba":               true,
	".spec.provider.device42":              true,
	".spec.provider.kubernetes.auth.cert":  true,
	".spec.provider.kubernetes.auth.token": true,
}

func (d *drifts) errorf(format string, args ...any) {
	d.errs = append(d.errs, fmt.Sprintf(format, args...))
}

func compareCRDs(d *drifts, eso, kf *apiextensionsv1.CustomResourceDefinition) {
	if !reflect.DeepEqual(eso.Spec.Names, kf.Spec.Names) {
		d.errorf("names: keyferry %+v, ESO %+v", kf.Spec.Names, eso.Spec.Names)
	}
	if eso.Spec.Scope != kf.Spec.Scope {
		d.errorf("scope: keyferry %s, ESO %s", kf.Spec.Scope, eso.Spec.Scope)
	}
	if eso.Spec.Conversion != nil && eso.Spec.Conversion.Strategy != apiextensionsv1.NoneConverter {
		d.errorf("ESO's CRD uses conversion %s; keyferry has none", eso.Spec.Conversion.Strategy)
	}
	for _, ev := range eso.Spec.Versions {
		kv := version(kf, ev.Name)
		if kv == nil {
			d.errorf("version %s: in ESO's CRD, missing from keyferry's (a cluster whose status.storedVersions lists it rejects keyferry's CRD)", ev.Name)
			continue
		}
		if kv.Served != ev.Served || kv.Storage != ev.Storage || kv.Deprecated != ev.Deprecated {
			d.errorf("version %s: keyferry served=%t storage=%t deprecated=%t, ESO served=%t storage=%t deprecated=%t",
				ev.Name, kv.Served, kv.Storage, kv.Deprecated, ev.Served, ev.Storage, ev.Deprecated)
		}
		if (kv.Subresources == nil) != (ev.Subresources == nil) {
			d.errorf("version %s: subresources differ", ev.Name)
		}
		if ev.Served {
			compareSchema(d, "", ev.Schema.OpenAPIV3Schema, kv.Schema.OpenAPIV3Schema)
			continue
		}
		// Unserved (v1beta1): the chart serves it on request
		// (crds.unsafeServeV1Beta1), with v1's schema, which must then
		// accept what ESO's v1beta1 accepts.
		old := drifts{extensions: d.extensions, accepting: true, known: knownV1beta1Differences}
		compareSchema(&old, "", ev.Schema.OpenAPIV3Schema, kv.Schema.OpenAPIV3Schema)
		for _, e := range old.errs {
			d.errorf("version %s: %s", ev.Name, e)
		}
	}
	for _, kv := range kf.Spec.Versions {
		if version(eso, kv.Name) == nil {
			d.errorf("version %s: in keyferry's CRD, not in ESO's", kv.Name)
		}
	}
}

// typeOf is a node's type as the API server validates it: an int-or-string
// node has no type of its own (its anyOf only restates integer|string).
func typeOf(s *apiextensionsv1.JSONSchemaProps) string {
	if s.XIntOrString {
		return "int-or-string"
	}
	return s.Type
}

func isOpaque(s *apiextensionsv1.JSONSchemaProps) bool {
	return s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields && len(s.Properties) == 0
}

func compareSchema(d *drifts, path string, eso, kf *apiextensionsv1.JSONSchemaProps) {
	at := path
	if at == "" {
		at = "."
	}
	if d.accepting && path == ".status" {
		// keyferry writes the status, in v1; no v1beta1 client does.
		return
	}
	if d.accepting && typeOf(kf) == "int-or-string" && (typeOf(eso) == "integer" || typeOf(eso) == "string") {
		// keyferry accepts both (v1's refreshInterval).
	} else if typeOf(eso) != typeOf(kf) {
		d.errorf("%s: type: keyferry %q, ESO %q", at, typeOf(kf), typeOf(eso))
	}
	if eso.Format != kf.Format {
		d.errorf("%s: format: keyferry %q, ESO %q", at, kf.Format, eso.Format)
	}
	if eso.XIntOrString && !intOrStringAnyOf(eso.AnyOf) || kf.XIntOrString && !intOrStringAnyOf(kf.AnyOf) {
		d.errorf("%s: int-or-string with an unexpected anyOf", at)
	}
	if eso.Nullable != kf.Nullable {
		d.errorf("%s: nullable: keyferry %t, ESO %t", at, kf.Nullable, eso.Nullable)
	}
	if d.accepting && (len(kf.Enum) == 0 || isSubset(jsonValues(eso.Enum), jsonValues(kf.Enum))) && len(eso.Enum) > 0 {
		// keyferry accepts every value ESO's older version did.
	} else if !reflect.DeepEqual(jsonValues(eso.Enum), jsonValues(kf.Enum)) {
		d.errorf("%s: enum: keyferry %v, ESO %v", at, jsonValues(kf.Enum), jsonValues(eso.Enum))
	}
	if d.accepting && kf.Default == nil {
		// v1 has no default there; keyferry reads the field left out as
		// ESO's default value (None, Default).
	} else if !reflect.DeepEqual(jsonValue(eso.Default), jsonValue(kf.Default)) {
		d.errorf("%s: default: keyferry %s, ESO %s", at, jsonValue(kf.Default), jsonValue(eso.Default))
	}

	if isOpaque(kf) {
		// A provider (or auth method, or generator) keyferry does not
		// implement: kept whole as an object, whatever ESO's schema says
		// inside it.
		untyped := kf.Type == "" && eso.Type == "" // any JSON value, on both sides
		if !untyped && (kf.Type != "object" || eso.Type != "object") {
			d.errorf("%s: opaque in keyferry, but types are keyferry %q, ESO %q (both must be object)", at, kf.Type, eso.Type)
		}
		if !isOpaque(eso) {
			d.opaque = append(d.opaque, at)
		}
		return
	}
	if preserves(eso) != preserves(kf) {
		d.errorf("%s: x-kubernetes-preserve-unknown-fields: keyferry %t, ESO %t", at, preserves(kf), preserves(eso))
	}
	if d.accepting && d.known[at] {
		// expected: knownV1beta1Differences
	} else if !slices.Equal(sorted(eso.Required), sorted(kf.Required)) && !(d.accepting && isSubset(kf.Required, eso.Required)) {
		d.errorf("%s: required: keyferry %v, ESO %v", at, sorted(kf.Required), sorted(eso.Required))
	}
	compareValidations(d, at, eso, kf)

	for _, name := range sortedKeys(kf.Properties) {
		p := path + "." + name
		ep, ok := eso.Properties[name]
		if !ok {
			if !d.extensions[p] && !d.accepting {
				d.errorf("%s: in keyferry's schema, not in ESO's", p)
			}
			continue
		}
		kp := kf.Properties[name]
		compareSchema(d, p, &ep, &kp)
	}
	if len(kf.Properties) > 0 || kf.Type == "object" && kf.AdditionalProperties == nil {
		for _, name := range sortedKeys(eso.Properties) {
			if _, ok := kf.Properties[name]; !ok && !(d.accepting && d.known[path+"."+name]) {
				d.errorf("%s.%s: in ESO's schema, missing from keyferry's (the API server would prune it)", path, name)
			}
		}
	}
	switch {
	case eso.Items != nil && kf.Items != nil && eso.Items.Schema != nil && kf.Items.Schema != nil:
		compareSchema(d, path+"[]", eso.Items.Schema, kf.Items.Schema)
	case (eso.Items == nil) != (kf.Items == nil):
		d.errorf("%s: items: only one side has them", at)
	}
	ea, ka := additional(eso), additional(kf)
	switch {
	case ea != nil && ka != nil:
		compareSchema(d, path+"{}", ea, ka)
	case (ea == nil) != (ka == nil):
		d.errorf("%s: additionalProperties: only one side has a schema", at)
	}
}

// compareValidations fails where keyferry is stricter than ESO (it would
// refuse an update ESO accepts) and records where it is more lenient.
func compareValidations(d *drifts, at string, eso, kf *apiextensionsv1.JSONSchemaProps) {
	checks := []struct {
		name    string
		eso, kf any
	}{
		{"pattern", eso.Pattern, kf.Pattern},
		{"minLength", eso.MinLength, kf.MinLength},
		{"maxLength", eso.MaxLength, kf.MaxLength},
		{"minimum", eso.Minimum, kf.Minimum},
		{"maximum", eso.Maximum, kf.Maximum},
		{"minItems", eso.MinItems, kf.MinItems},
		{"maxItems", eso.MaxItems, kf.MaxItems},
		{"minProperties", eso.MinProperties, kf.MinProperties},
		{"maxProperties", eso.MaxProperties, kf.MaxProperties},
		{"x-kubernetes-validations", eso.XValidations, kf.XValidations},
		{"x-kubernetes-list-type", eso.XListType, kf.XListType},
		{"x-kubernetes-map-type", eso.XMapType, kf.XMapType},
		{"oneOf", eso.OneOf, kf.OneOf},
		{"allOf", eso.AllOf, kf.AllOf},
		{"not", eso.Not, kf.Not},
	}
	for _, c := range checks {
		ej, kj := jsonValue(c.eso), jsonValue(c.kf)
		switch {
		case ej == kj:
		case kj == "null" || kj == `""` || kj == "[]":
			d.looser = append(d.looser, fmt.Sprintf("%s: %s %s", at, c.name, ej))
		default:
			d.errorf("%s: %s: keyferry %s, ESO %s (stricter than ESO)", at, c.name, kj, ej)
		}
	}
}

func intOrStringAnyOf(a []apiextensionsv1.JSONSchemaProps) bool {
	if len(a) == 0 {
		return true
	}
	var types []string
	for _, s := range a {
		types = append(types, s.Type)
	}
	return slices.Equal(sorted(types), []string{"integer", "string"})
}

func preserves(s *apiextensionsv1.JSONSchemaProps) bool {
	return s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields
}

func additional(s *apiextensionsv1.JSONSchemaProps) *apiextensionsv1.JSONSchemaProps {
	if s.AdditionalProperties == nil {
		return nil
	}
	return s.AdditionalProperties.Schema
}

func jsonValue(v any) string {
	if j, ok := v.(*apiextensionsv1.JSON); ok {
		if j == nil {
			return "null"
		}
		return string(j.Raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonValues(vs []apiextensionsv1.JSON) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, string(v.Raw))
	}
	sort.Strings(out)
	return out
}

// isSubset says whether every element of a is in b.
func isSubset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
