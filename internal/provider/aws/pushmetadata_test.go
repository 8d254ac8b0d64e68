package aws

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keyferry/keyferry/internal/provider"
)

// metaCanary is a value in metadata that no error may quote.
const metaCanary = "kf-meta-canary-7f3a"

func envelope(spec string) string {
	return `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":` + spec + `}`
}

// metadataCase is one row of the parser tables: raw metadata and the
// field the refusal names ("" when it is accepted).
type metadataCase struct {
	name  string
	raw   string
	field string
}

func checkMetadataCases(t *testing.T, cases []metadataCase, parse func([]byte) error) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := parse([]byte(tc.raw))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, provider.ErrInvalidPush) {
				t.Fatalf("err = %v; want ErrInvalidPush", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("err = %q; want it to name %q", err, tc.field)
			}
			if strings.Contains(err.Error(), metaCanary) {
				t.Errorf("err = %q quotes a value", err)
			}
		})
	}
}

// Rows shared by both services: the object around the spec.
var envelopeCases = []metadataCase{
	{name: "no metadata", raw: ``},
	{name: "null", raw: `null`},
	{name: "no spec", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata"}`},
	{name: "empty spec", raw: envelope(`{}`)},
	{name: "wrong apiVersion", raw: `{"apiVersion":"` + metaCanary + `","kind":"PushSecretMetadata"}`, field: "apiVersion"},
	{name: "missing apiVersion", raw: `{"kind":"PushSecretMetadata"}`, field: "apiVersion"},
	{name: "wrong kind", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"` + metaCanary + `"}`, field: "kind"},
	{name: "unknown top-level field", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","extra":"` + metaCanary + `"}`, field: `"extra"`},
	{name: "unknown spec field", raw: envelope(`{"nope":"` + metaCanary + `"}`), field: `"nope"`},
	{name: "spec not an object", raw: envelope(`"` + metaCanary + `"`), field: "spec"},
	{name: "tag value not a string", raw: envelope(`{"tags":{"a":1}}`), field: "spec.tags"},
	{name: "managed-by tag", raw: envelope(`{"tags":{"managed-by":"` + metaCanary + `"}}`), field: "managed-by"},
	{name: "not JSON", raw: `{"apiVersion":` + metaCanary, field: "JSON"},
	{name: "two JSON values", raw: envelope(`{}`) + `{}`, field: "more than one"},
	{name: "an array", raw: `["` + metaCanary + `"]`, field: "not an object"},
}

func TestParseSMPushMetadata(t *testing.T) {
	cases := append(slices.Clone(envelopeCases),
		metadataCase{name: "ESO's example", raw: envelope(`{"kmsKeyID":"bb123123-b2b0-4f60-ac3a-44a13f0e6b6c","secretPushFormat":"string","description":"d","tags":{"secret-store":"s","refresh-interval":"1h"}}`)},
		metadataCase{name: "kmsKeyId as ESO spells the field", raw: envelope(`{"kmsKeyId":"k"}`)},
		metadataCase{name: "binary format", raw: envelope(`{"secretPushFormat":"binary"}`)},
		metadataCase{name: "unknown format", raw: envelope(`{"secretPushFormat":"` + metaCanary + `"}`), field: "spec.secretPushFormat"},
		metadataCase{name: "format in another case", raw: envelope(`{"secretPushFormat":"String"}`), field: "spec.secretPushFormat"},
		metadataCase{name: "resourcePolicy from a ConfigMap", raw: envelope(`{"resourcePolicy":{"blockPublicPolicy":true,"policySourceRef":{"kind":"ConfigMap","name":"my-secret-resource-policy","key":"policy.json"}}}`)},
		metadataCase{name: "resourcePolicy from a Secret", raw: envelope(`{"resourcePolicy":{"policySourceRef":{"kind":"Secret","name":"p","key":"k"}}}`)},
		metadataCase{name: "resourcePolicy null", raw: envelope(`{"resourcePolicy":null}`)},
		metadataCase{name: "resourcePolicy without policySourceRef", raw: envelope(`{"resourcePolicy":{"blockPublicPolicy":false}}`), field: "spec.resourcePolicy.policySourceRef"},
		metadataCase{name: "policySourceRef of another kind", raw: envelope(`{"resourcePolicy":{"policySourceRef":{"kind":"` + metaCanary + `","name":"p","key":"k"}}}`), field: "spec.resourcePolicy.policySourceRef.kind"},
		metadataCase{name: "policySourceRef kind in another case", raw: envelope(`{"resourcePolicy":{"policySourceRef":{"kind":"configmap","name":"p","key":"k"}}}`), field: "spec.resourcePolicy.policySourceRef.kind"},
		metadataCase{name: "policySourceRef without name", raw: envelope(`{"resourcePolicy":{"policySourceRef":{"kind":"Secret","key":"k"}}}`), field: "spec.resourcePolicy.policySourceRef.name"},
		metadataCase{name: "policySourceRef name not an object name", raw: envelope(`{"resourcePolicy":{"policySourceRef":{"kind":"Secret","name":"` + metaCanary + `/x","key":"k"}}}`), field: "spec.resourcePolicy.policySourceRef.name"},
		metadataCase{name: "policySourceRef without key", raw: envelope(`{"resourcePolicy":{"policySourceRef":{"kind":"ConfigMap","name":"p"}}}`), field: "spec.resourcePolicy.policySourceRef.key"},
		metadataCase{name: "policySourceRef key not a data key", raw: envelope(`{"resourcePolicy":{"policySourceRef":{"kind":"ConfigMap","name":"p","key":"` + metaCanary + `/k"}}}`), field: "spec.resourcePolicy.policySourceRef.key"},
		metadataCase{name: "policySourceRef unknown field", raw: envelope(`{"resourcePolicy":{"policySourceRef":{"kind":"ConfigMap","name":"p","key":"k","namespace":"other"}}}`), field: `"namespace"`},
		metadataCase{name: "inline policy (not ESO's)", raw: envelope(`{"resourcePolicy":{"policy":"{}"}}`), field: `"policy"`},
		metadataCase{name: "blockPublicPolicy not a boolean", raw: envelope(`{"resourcePolicy":{"blockPublicPolicy":"` + metaCanary + `","policySourceRef":{"kind":"ConfigMap","name":"p","key":"k"}}}`), field: "blockPublicPolicy"},
		metadataCase{name: "resourcePolicy not an object", raw: envelope(`{"resourcePolicy":"` + metaCanary + `"}`), field: "spec.resourcePolicy"},
		metadataCase{name: "ESO's replication example", raw: envelope(`{"kmsKeyID":"bb123123-b2b0-4f60-ac3a-44a13f0e6b6c","replicationLocations":["eu-north-1","eu-west-2"],"secretPushFormat":"string"}`)},
		metadataCase{name: "replicated nowhere", raw: envelope(`{"replicationLocations":[]}`)},
		metadataCase{name: "replication left alone", raw: envelope(`{"replicationLocations":null}`)},
		metadataCase{name: "GovCloud, ISO and sovereign regions", raw: envelope(`{"replicationLocations":["us-gov-west-1","us-isob-east-1","eusc-de-east-1","ap-southeast-7"]}`)},
		metadataCase{name: "not a region", raw: envelope(`{"replicationLocations":["eu-north-1","` + metaCanary + `"]}`), field: "spec.replicationLocations[1]"},
		metadataCase{name: "region in capitals", raw: envelope(`{"replicationLocations":["EU-NORTH-1"]}`), field: "spec.replicationLocations[0]"},
		metadataCase{name: "empty region", raw: envelope(`{"replicationLocations":[""]}`), field: "spec.replicationLocations[0]"},
		metadataCase{name: "region twice", raw: envelope(`{"replicationLocations":["eu-west-2","eu-north-1","eu-west-2"]}`), field: "spec.replicationLocations[2]"},
		metadataCase{name: "regions not an array", raw: envelope(`{"replicationLocations":"eu-north-1"}`), field: "spec.replicationLocations"},
		metadataCase{name: "per-region KMS key (not ESO's)", raw: envelope(`{"replicationLocations":[{"region":"eu-north-1","kmsKeyId":"k"}]}`), field: "spec.replicationLocations"},
		metadataCase{name: "Parameter Store field", raw: envelope(`{"secretType":"SecureString"}`), field: `"secretType"`},
	)
	checkMetadataCases(t, cases, func(raw []byte) error { _, err := parseSMPushMetadata(raw); return err })

	m, err := parseSMPushMetadata([]byte(envelope(`{"KMSKEYID":"k","secretPushFormat":"string","tags":{"a":"b"}}`)))
	if err != nil {
		t.Fatal(err)
	}
	if m.KMSKeyID != "k" || !m.stringFormat() || m.Tags["a"] != "b" || m.description() != pushDescription {
		t.Errorf("parsed %+v; want field names matched case-insensitively, as ESO (encoding/json) does", m)
	}
	var none *smPushMetadata
	if none.stringFormat() || none.description() != pushDescription {
		t.Error("no metadata is not ESO's default (binary, ESO's description)")
	}
}

func TestParsePSPushMetadata(t *testing.T) {
	cases := append(slices.Clone(envelopeCases),
		metadataCase{name: "ESO's example", raw: envelope(`{"description":"d","secretType":"SecureString","kmsKeyID":"k","tier":{"type":"Advanced","policies":[{"type":"Expiration","version":"1.0","attributes":{"timestamp":"2024-12-02T21:34:33.000Z"}}]},"tags":{"environment":"sandbox"}}`)},
		metadataCase{name: "StringList", raw: envelope(`{"secretType":"StringList"}`)},
		metadataCase{name: "encodeAsDecoded", raw: envelope(`{"encodeAsDecoded":true}`)},
		metadataCase{name: "Intelligent-Tiering", raw: envelope(`{"tier":{"type":"Intelligent-Tiering"}}`)},
		metadataCase{name: "unknown secretType", raw: envelope(`{"secretType":"` + metaCanary + `"}`), field: "spec.secretType"},
		metadataCase{name: "unknown tier", raw: envelope(`{"tier":{"type":"` + metaCanary + `"}}`), field: "spec.tier.type"},
		metadataCase{name: "policies not an array", raw: envelope(`{"tier":{"type":"Advanced","policies":{"a":"` + metaCanary + `"}}}`), field: "spec.tier.policies"},
		metadataCase{name: "unknown tier field", raw: envelope(`{"tier":{"type":"Advanced","ttl":"1h"}}`), field: `"ttl"`},
		metadataCase{name: "encodeAsDecoded not a boolean", raw: envelope(`{"encodeAsDecoded":"` + metaCanary + `"}`), field: "spec.encodeAsDecoded"},
		metadataCase{name: "Secrets Manager field", raw: envelope(`{"secretPushFormat":"string"}`), field: `"secretPushFormat"`},
	)
	checkMetadataCases(t, cases, func(raw []byte) error { _, err := parsePSPushMetadata(raw); return err })
}

func TestPSPutParameterInputs(t *testing.T) {
	meta, err := parsePSPushMetadata([]byte(envelope(`{"secretType":"SecureString","kmsKeyID":"k","description":"d","tier":{"type":"Advanced","policies":[ {"type": "Expiration"} ]},"tags":{"team":"t"}}`)))
	if err != nil {
		t.Fatal(err)
	}
	in := psCreateInput("p", []byte("v"), meta)
	if in.Type != ssmtypes.ParameterTypeSecureString || aws.ToString(in.KeyId) != "k" || in.Tier != ssmtypes.ParameterTierAdvanced ||
		aws.ToString(in.Policies) != `[{"type":"Expiration"}]` || aws.ToString(in.Description) != "d" || aws.ToBool(in.Overwrite) {
		t.Errorf("create input = %+v", in)
	}
	if got := psTagMap(in.Tags); len(got) != 2 || got["team"] != "t" || got[provider.ManagedByKey] != provider.ManagedByValue {
		t.Errorf("create tags = %v; want the metadata's and managed-by", got)
	}

	plain := psCreateInput("p", []byte("v"), nil)
	if plain.Type != ssmtypes.ParameterTypeString || plain.KeyId != nil || plain.Tier != "" || aws.ToString(plain.Description) != pushDescription {
		t.Errorf("create input without metadata = %+v; want ESO's defaults", plain)
	}

	// ESO sends the KMS key only for a SecureString, the tier only when
	// Advanced.
	standard, _ := parsePSPushMetadata([]byte(envelope(`{"kmsKeyID":"k","tier":{"type":"Standard","policies":[]}}`)))
	if in := psCreateInput("p", []byte("v"), standard); in.KeyId != nil || in.Tier != "" || in.Policies != nil {
		t.Errorf("create input = %+v; want no key for a String, no tier unless Advanced", in)
	}

	cur := &ssmtypes.Parameter{Name: aws.String("p"), Type: ssmtypes.ParameterTypeSecureString}
	if in := psOverwriteInput(cur, []byte("v"), nil); in.Type != ssmtypes.ParameterTypeSecureString || in.Description != nil || len(in.Tags) != 0 {
		t.Errorf("overwrite without metadata = %+v; want the type kept, nothing else sent", in)
	}
	typeless, _ := parsePSPushMetadata([]byte(envelope(`{"tags":{"a":"b"}}`)))
	if in := psOverwriteInput(cur, []byte("v"), typeless); in.Type != ssmtypes.ParameterTypeSecureString || aws.ToString(in.Description) != pushDescription || len(in.Tags) != 0 {
		t.Errorf("overwrite with metadata without secretType = %+v; want the type kept and no tags (PutParameter refuses tags with Overwrite)", in)
	}
	if in := psOverwriteInput(cur, []byte("v"), meta); aws.ToString(in.KeyId) != "k" || in.Tier != ssmtypes.ParameterTierAdvanced {
		t.Errorf("overwrite with metadata = %+v; want its key and tier", in)
	}
}

func psTagMap(tags []ssmtypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestTagChanges(t *testing.T) {
	mb := provider.ManagedByKey
	for _, tc := range []struct {
		name         string
		have, want   map[string]string
		remove, sets []string
	}{
		{name: "nothing to do", have: map[string]string{mb: provider.ManagedByValue, "a": "1"}, want: map[string]string{"a": "1"}},
		{name: "a tag added", have: map[string]string{mb: provider.ManagedByValue}, want: map[string]string{"a": "1"}, sets: []string{"a"}},
		{name: "a tag changed", have: map[string]string{mb: provider.ManagedByValue, "a": "0"}, want: map[string]string{"a": "1"}, sets: []string{"a"}},
		{name: "a tag not listed is removed, managed-by kept", have: map[string]string{mb: provider.ManagedByValue, "old": "x", "a": "1"}, want: map[string]string{"a": "1"}, remove: []string{"old"}},
		{name: "managed-by restored", have: map[string]string{"a": "1"}, want: map[string]string{"a": "1"}, sets: []string{mb}},
		{name: "everything", have: map[string]string{mb: provider.ManagedByValue, "z": "1", "b": "2"}, want: map[string]string{"c": "3", "b": "3"}, remove: []string{"z"}, sets: []string{"b", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remove, set := tagChanges(tc.have, tc.want)
			if !slices.Equal(remove, tc.remove) || !slices.Equal(set, tc.sets) {
				t.Errorf("tagChanges = remove %v, set %v; want remove %v, set %v", remove, set, tc.remove, tc.sets)
			}
		})
	}
}

// FuzzParsePushMetadata parses any metadata for both services: it is
// accepted or refused with ErrInvalidPush, never panics, never quotes the
// canary value; what is accepted never tags managed-by, and its tag
// changes always keep the managed-by mark.
func FuzzParsePushMetadata(f *testing.F) {
	f.Add([]byte(envelope(`{"kmsKeyID":"k","secretPushFormat":"string","description":"d","tags":{"a":"b"}}`)))
	f.Add([]byte(envelope(`{"secretType":"SecureString","tier":{"type":"Advanced","policies":[{"type":"Expiration"}]},"encodeAsDecoded":true,"tags":{"x":"y"}}`)))
	f.Add([]byte(envelope(`{"tags":{"managed-by":"x"}}`)))
	f.Add([]byte(`{"apiVersion":"v1","kind":"PushSecretMetadata"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"apiVersion":`))
	f.Add([]byte(envelope(`{"resourcePolicy":null,"tier":null}`)))
	f.Add([]byte(envelope(`{"description":"CANARY","tags":{"a":"CANARY"},"kmsKeyId":"CANARY"}`)))
	f.Add([]byte(envelope(`{"secretType":"CANARY","secretPushFormat":"CANARY"}`)))
	f.Add([]byte(envelope(`{"resourcePolicy":{"blockPublicPolicy":true,"policySourceRef":{"kind":"ConfigMap","name":"CANARY","key":"policy.json"}}}`)))
	f.Add([]byte(envelope(`{"resourcePolicy":{"policySourceRef":{"kind":"CANARY","name":"p","key":"CANARY/k"}}}`)))
	f.Add([]byte(envelope(`{"replicationLocations":["eu-north-1","eu-west-2"],"kmsKeyId":"k"}`)))
	f.Add([]byte(envelope(`{"replicationLocations":["CANARY","eu-north-1","eu-north-1"]}`)))
	f.Add([]byte(envelope(`{"replicationLocations":[],"resourcePolicy":{}}`)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		withCanary := []byte(strings.ReplaceAll(string(raw), "CANARY", metaCanary))
		// An error may name a field, so the canary is checked only while
		// no key holds it.
		inKey := canaryKey.Match(withCanary)
		sm, err := parseSMPushMetadata(withCanary)
		checkFuzzed(t, err, inKey, sm != nil, func() map[string]string { return sm.Tags })
		if sm != nil {
			checkFuzzedSMExtras(t, sm)
		}
		ps, err := parsePSPushMetadata(withCanary)
		checkFuzzed(t, err, inKey, ps != nil, func() map[string]string { return ps.Tags })
		if ps != nil {
			in := psCreateInput("p", []byte("v"), ps)
			if psTagMap(in.Tags)[provider.ManagedByKey] != provider.ManagedByValue {
				t.Fatal("a created parameter is not tagged managed-by")
			}
		}
	})
}

// canaryKey matches the canary inside an object key.
var canaryKey = regexp.MustCompile(`"[^"]*` + metaCanary + `[^"]*"\s*:`)

func checkFuzzed(t *testing.T, err error, canaryInKey, parsed bool, tags func() map[string]string) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, provider.ErrInvalidPush) {
			t.Fatalf("err = %v; want ErrInvalidPush", err)
		}
		if !canaryInKey && strings.Contains(err.Error(), metaCanary) {
			t.Fatalf("err = %q quotes a value", err)
		}
		return
	}
	if !parsed {
		return
	}
	if _, ok := tags()[provider.ManagedByKey]; ok {
		t.Fatal("metadata setting the managed-by tag was accepted")
	}
	remove, _ := tagChanges(map[string]string{provider.ManagedByKey: provider.ManagedByValue}, tags())
	if slices.Contains(remove, provider.ManagedByKey) {
		t.Fatal("the tag changes remove the managed-by mark")
	}
}

// checkFuzzedSMExtras checks what accepted Secrets Manager metadata asks
// beside the value: a resourcePolicy names a ConfigMap or Secret key, and
// the replica regions are region names, each once, whose changes from any
// replicas never add a region twice nor remove a listed one.
func checkFuzzedSMExtras(t *testing.T, m *smPushMetadata) {
	t.Helper()
	if p := m.ResourcePolicy; p != nil {
		if ref := p.PolicySourceRef; ref == nil || (ref.Kind != policySourceConfigMap && ref.Kind != policySourceSecret) || ref.Name == "" || ref.Key == "" {
			t.Fatalf("accepted resourcePolicy %+v names no ConfigMap or Secret key", p)
		}
	}
	for i, r := range m.ReplicationLocations {
		if !awsRegion.MatchString(r) || slices.Index(m.ReplicationLocations, r) != i {
			t.Fatalf("accepted replicationLocations[%d] is no region, or a region again", i)
		}
	}
	remove, add := regionChanges([]string{"eu-north-1", "us-east-2"}, m.ReplicationLocations)
	for _, r := range remove {
		if slices.Contains(m.ReplicationLocations, r) {
			t.Fatal("a listed region would be removed")
		}
	}
	for _, r := range add {
		if r == "eu-north-1" || r == "us-east-2" {
			t.Fatal("a region already replicated to would be added again")
		}
	}
	in := replicaRegions(m.ReplicationLocations, metaKMSKey(m))
	if len(in) != len(m.ReplicationLocations) {
		t.Fatal("not every listed region is sent")
	}
}
