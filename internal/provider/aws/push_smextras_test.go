package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/keyferry/keyferry/internal/provider"
)

// mapSources is a provider.PushSources over fixed objects ("Kind/name" →
// data), for the pure functions' tables; the PushSecret controller's own
// (namespace-bound) reader is tested against the API server.
type mapSources map[string]map[string]string

func (m mapSources) ReadKey(_ context.Context, kind, name, key string) ([]byte, error) {
	obj, ok := m[kind+"/"+name]
	if !ok {
		return nil, fmt.Errorf("%w: %s %q does not exist", provider.ErrInvalidPush, kind, name)
	}
	v, ok := obj[key]
	if !ok {
		return nil, fmt.Errorf("%w: %s %q has no key %q", provider.ErrInvalidPush, kind, name, key)
	}
	return []byte(v), nil
}

func TestResolvePolicy(t *testing.T) {
	const policy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*","Sid":"` + metaCanary + `"}]}`
	sources := mapSources{
		"ConfigMap/p": {"policy.json": "\n" + policy + "\n", "empty": "  \n", "bad": `[` + metaCanary, "array": `["` + metaCanary + `"]`},
		"Secret/p":    {"policy.json": policy},
	}
	ref := func(kind, key string, block string) string {
		b := ""
		if block != "" {
			b = `"blockPublicPolicy":` + block + `,`
		}
		return `{"resourcePolicy":{` + b + `"policySourceRef":{"kind":"` + kind + `","name":"p","key":"` + key + `"}}}`
	}
	for _, tc := range []struct {
		name    string
		spec    string
		sources provider.PushSources
		want    smPolicy
		err     error // nil: accepted
		errText string
	}{
		{name: "no metadata", spec: ``, want: smPolicy{}},
		{name: "no resourcePolicy: none (deleted)", spec: `{"tags":{"a":"b"}}`, want: smPolicy{}},
		{name: "from a ConfigMap, trimmed", spec: ref("ConfigMap", "policy.json", ""), sources: sources, want: smPolicy{set: true, doc: policy}},
		{name: "from a Secret, blockPublicPolicy", spec: ref("Secret", "policy.json", "true"), sources: sources, want: smPolicy{set: true, doc: policy, blockPublic: aws.Bool(true), secret: true}},
		{name: "blockPublicPolicy false is sent", spec: ref("ConfigMap", "policy.json", "false"), sources: sources, want: smPolicy{set: true, doc: policy, blockPublic: aws.Bool(false)}},
		{name: "an empty key: none (deleted), as ESO", spec: ref("ConfigMap", "empty", ""), sources: sources, want: smPolicy{}},
		{name: "not JSON", spec: ref("ConfigMap", "bad", ""), sources: sources, err: provider.ErrInvalidPush, errText: "not a JSON object"},
		{name: "a JSON array", spec: ref("ConfigMap", "array", ""), sources: sources, err: provider.ErrInvalidPush, errText: "not a JSON object"},
		{name: "missing key", spec: ref("ConfigMap", "nope", ""), sources: sources, err: provider.ErrInvalidPush, errText: "policySourceRef"},
		{name: "missing object", spec: ref("Secret", "nope", ""), sources: mapSources{}, err: provider.ErrInvalidPush, errText: "policySourceRef"},
		{name: "no reader", spec: ref("ConfigMap", "policy.json", ""), errText: "cannot be resolved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var raw []byte
			if tc.spec != "" {
				raw = []byte(envelope(tc.spec))
			}
			meta, err := parseSMPushMetadata(raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := resolvePolicy(context.Background(), meta, tc.sources)
			if tc.errText != "" {
				if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v; want %v naming %q", err, tc.err, tc.errText)
				}
				if strings.Contains(err.Error(), metaCanary) || strings.Contains(err.Error(), "Statement") {
					t.Fatalf("err = %q quotes the policy", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.set != tc.want.set || got.doc != tc.want.doc || got.secret != tc.want.secret ||
				(got.blockPublic == nil) != (tc.want.blockPublic == nil) || aws.ToBool(got.blockPublic) != aws.ToBool(tc.want.blockPublic) {
				t.Fatalf("policy = %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestRegionChanges(t *testing.T) {
	for _, tc := range []struct {
		name        string
		have, want  []string
		remove, add []string
	}{
		{name: "nothing replicated, none wanted", have: nil, want: []string{}},
		{name: "add the missing ones in the listed order", have: []string{"eu-north-1"}, want: []string{"eu-west-2", "eu-north-1", "us-east-2"}, add: []string{"eu-west-2", "us-east-2"}},
		{name: "remove the ones not listed", have: []string{"eu-north-1", "eu-west-2"}, want: []string{"eu-west-2"}, remove: []string{"eu-north-1"}},
		{name: "an empty list removes every replica", have: []string{"eu-north-1", "eu-west-2"}, want: []string{}, remove: []string{"eu-north-1", "eu-west-2"}},
		{name: "both", have: []string{"eu-north-1"}, want: []string{"eu-west-2"}, remove: []string{"eu-north-1"}, add: []string{"eu-west-2"}},
		{name: "already as listed", have: []string{"eu-west-2", "eu-north-1"}, want: []string{"eu-north-1", "eu-west-2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remove, add := regionChanges(tc.have, tc.want)
			if !slices.Equal(remove, tc.remove) || !slices.Equal(add, tc.add) {
				t.Fatalf("remove %v, add %v; want %v, %v", remove, add, tc.remove, tc.add)
			}
		})
	}
}

func TestCheckReplicaRegions(t *testing.T) {
	meta := &smPushMetadata{ReplicationLocations: []string{"eu-north-1", "eu-central-1"}}
	if err := checkReplicaRegions(meta, "eu-central-1"); !errors.Is(err, provider.ErrInvalidPush) || !strings.Contains(err.Error(), "spec.replicationLocations[1]") {
		t.Fatalf("err = %v; want the store's own region refused by index", err)
	}
	for _, ok := range []struct {
		meta *smPushMetadata
		own  string
	}{{meta, "us-east-1"}, {nil, "eu-central-1"}, {meta, ""}} {
		if err := checkReplicaRegions(ok.meta, ok.own); err != nil {
			t.Fatalf("checkReplicaRegions(%+v, %q) = %v", ok.meta, ok.own, err)
		}
	}
}

func TestReplicaRegionsCarryTheSecretsKey(t *testing.T) {
	if replicaRegions(nil, nil) != nil || replicaRegions([]string{}, aws.String("k")) != nil {
		t.Fatal("no regions must send no AddReplicaRegions (AWS refuses an empty list)")
	}
	got := replicaRegions([]string{"eu-north-1", "eu-west-2"}, aws.String("k"))
	if len(got) != 2 || aws.ToString(got[0].Region) != "eu-north-1" || aws.ToString(got[1].KmsKeyId) != "k" {
		t.Fatalf("replica regions = %+v", got)
	}
	if metaKMSKey(nil) != nil || metaKMSKey(&smPushMetadata{}) != nil || aws.ToString(metaKMSKey(&smPushMetadata{KMSKeyID: "k"})) != "k" {
		t.Fatal("metaKMSKey is not the metadata's key, or nil for AWS's default")
	}
}
