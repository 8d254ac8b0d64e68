package aws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyferry/keyferry/internal/provider"
)

// objectSources is a provider.PushSources over fixed objects ("Kind/name"
// → data), standing in for the PushSecret controller's namespace-bound
// reader (tested in test/providers against the API server).
type objectSources map[string]map[string]string

func (m objectSources) ReadKey(_ context.Context, kind, name, key string) ([]byte, error) {
	v, ok := m[kind+"/"+name][key]
	if !ok {
		return nil, fmt.Errorf("%w: %s %q has no key %q", provider.ErrInvalidPush, kind, name, key)
	}
	return []byte(v), nil
}

// crossAccountPolicy is ESO's example policy (AWS Secrets Manager guide,
// "Resource Policy Example"), with principal as its principal.
func crossAccountPolicy(principal string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + principal + `"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
}

// policyRefMeta is metadata whose resourcePolicy is key of ConfigMap
// "policies", with blockPublicPolicy true.
func policyRefMeta(kind, key string) string {
	return `{"resourcePolicy":{"blockPublicPolicy":true,"policySourceRef":{"kind":"` + kind + `","name":"policies","key":"` + key + `"}}}`
}

func smPolicy(t *testing.T, name string) string {
	t.Helper()
	out, err := adminSM().GetResourcePolicy(context.Background(), &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatalf("GetResourcePolicy(%s): %v", name, err)
	}
	return aws.ToString(out.ResourcePolicy)
}

func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(ax) == string(by)
}

// A push whose metadata sets resourcePolicy puts the policy its
// ConfigMap (or Secret) key holds on the secret it creates, with
// blockPublicPolicy as set; on every later push it puts it again only
// when it changed, and once resourcePolicy is removed from the metadata
// the policy is deleted, as ESO does. A secret keyferry did not create
// keeps its policy.
func TestPushSecretsManagerResourcePolicy(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder()
	c, ok := newClient(t, motoProvider(rec), smSpec()).(provider.Pusher)
	if !ok {
		t.Fatal("not a provider.Pusher")
	}
	const name = "push-sm/resource-policy"
	ref := provider.PushRef{RemoteKey: name}
	first, second := crossAccountPolicy("arn:aws:iam::123456789012:root"), crossAccountPolicy("arn:aws:iam::210987654321:root")
	sources := objectSources{
		"ConfigMap/policies": {"policy.json": "\n" + first + "\n", "other.json": second},
		"Secret/policies":    {"policy.json": second},
	}
	withPolicy := func(spec string) provider.PushValue {
		v := withMeta(key("k", valueCanary), spec)
		v.Sources = sources
		return v
	}

	if !push(t, c, ref, withPolicy(policyRefMeta("ConfigMap", "policy.json"))) {
		t.Fatal("the first push wrote nothing")
	}
	if got := smPolicy(t, name); !sameJSON(t, got, first) {
		t.Fatalf("resource policy = %s; want the ConfigMap's", got)
	}
	puts := rec.calls("PutResourcePolicy")
	if len(puts) != 1 {
		t.Fatalf("%d PutResourcePolicy calls; want 1", len(puts))
	}
	var sent struct{ BlockPublicPolicy *bool }
	if err := json.Unmarshal(puts[0].Body, &sent); err != nil || sent.BlockPublicPolicy == nil || !*sent.BlockPublicPolicy {
		t.Fatalf("PutResourcePolicy sent BlockPublicPolicy %v; want true, as the metadata sets", sent.BlockPublicPolicy)
	}

	rec.reset()
	if push(t, c, ref, withPolicy(policyRefMeta("ConfigMap", "policy.json"))) {
		t.Fatal("a push of the same value and policy reports a write")
	}
	if n := len(rec.calls("PutResourcePolicy")); n != 0 {
		t.Fatalf("the unchanged policy was put again (%d calls)", n)
	}
	if n := len(rec.calls("GetResourcePolicy")); n != 1 {
		t.Fatalf("%d GetResourcePolicy calls; want 1 (the policy is checked on every push)", n)
	}

	// Changed by hand: put back on the next push, even though the value
	// did not change.
	if _, err := adminSM().PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String(name), ResourcePolicy: aws.String(second)}); err != nil {
		t.Fatal(err)
	}
	if !push(t, c, ref, withPolicy(policyRefMeta("ConfigMap", "policy.json"))) {
		t.Fatal("putting the policy back reports no write")
	}
	if got := smPolicy(t, name); !sameJSON(t, got, first) {
		t.Fatalf("resource policy = %s; want the ConfigMap's back", got)
	}

	// From a Secret.
	if !push(t, c, ref, withPolicy(policyRefMeta("Secret", "policy.json"))) {
		t.Fatal("a new policy reports no write")
	}
	if got := smPolicy(t, name); !sameJSON(t, got, second) {
		t.Fatalf("resource policy = %s; want the Secret's", got)
	}

	// A policy that is no JSON object, or a missing key, is refused
	// before anything is written.
	rec.reset()
	sources["ConfigMap/policies"]["bad"] = `{"Version": ` + valueCanary
	for _, k := range []string{"bad", "missing"} {
		st, err := c.Inspect(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Push(ctx, ref, withPolicy(policyRefMeta("ConfigMap", k)), st)
		wantErr(t, err, provider.ErrInvalidPush)
	}
	for _, call := range []string{"PutResourcePolicy", "DeleteResourcePolicy", "PutSecretValue", "TagResource"} {
		if n := len(rec.calls(call)); n != 0 {
			t.Fatalf("a refused policy made %d %s calls", n, call)
		}
	}

	// resourcePolicy removed from the metadata: the policy goes.
	if push(t, c, ref, withPolicy(`{"description":"d"}`)) {
		t.Fatal("deleting the policy of an unchanged value reports a write")
	}
	if got := smPolicy(t, name); got != "" {
		t.Fatalf("resource policy = %s; want none once resourcePolicy is removed", got)
	}

	// A secret keyferry did not create: its policy is not touched.
	const foreign = "push-sm/resource-policy-foreign"
	if _, err := adminSM().CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(foreign), SecretString: aws.String("theirs")}); err != nil {
		t.Fatal(err)
	}
	if _, err := adminSM().PutResourcePolicy(ctx, &secretsmanager.PutResourcePolicyInput{SecretId: aws.String(foreign), ResourcePolicy: aws.String(second)}); err != nil {
		t.Fatal(err)
	}
	fref := provider.PushRef{RemoteKey: foreign}
	for _, spec := range []string{policyRefMeta("ConfigMap", "policy.json"), `{}`} {
		st, err := c.Inspect(ctx, fref)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Push(ctx, fref, withPolicy(spec), st)
		wantErr(t, err, provider.ErrNotManaged)
	}
	if got := smPolicy(t, foreign); !sameJSON(t, got, second) {
		t.Fatalf("the foreign secret's policy = %s; want it untouched", got)
	}
}

// regionSM is the admin's Secrets Manager client of another region.
func regionSM(r string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(adminConfig(), func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(env.moto.Endpoint())
		o.Region = r
	})
}

func replicaRegionsOf(t *testing.T, name string) []string {
	t.Helper()
	d := smDescribe(t, name)
	if d == nil {
		t.Fatalf("%s does not exist", name)
	}
	var out []string
	for _, s := range d.ReplicationStatus {
		out = append(out, aws.ToString(s.Region))
	}
	slices.Sort(out)
	return out
}

// replicationLocations are the regions a secret keyferry creates is
// replicated to (CreateSecret's AddReplicaRegions, with the metadata's KMS
// key); on later pushes the missing ones are added and the ones not listed
// removed, an empty list removes every replica and no
// replicationLocations leaves replication alone, as in ESO. Deleting the
// secret removes its replicas first (AWS refuses to delete a replicated
// secret).
func TestPushSecretsManagerReplicationLocations(t *testing.T) {
	ctx := context.Background()
	rec := newRecorder()
	c, ok := newClient(t, motoProvider(rec), smSpec()).(provider.Pusher)
	if !ok {
		t.Fatal("not a provider.Pusher")
	}
	const name = "push-sm/replicated"
	ref := provider.PushRef{RemoteKey: name}
	regions := func(rs ...string) string {
		b, _ := json.Marshal(append([]string{}, rs...))
		return `{"kmsKeyID":"bb123123-b2b0-4f60-ac3a-44a13f0e6b6c","replicationLocations":` + string(b) + `}`
	}

	if !push(t, c, ref, withMeta(key("k", valueCanary), regions("eu-north-1", "eu-west-2"))) {
		t.Fatal("the first push wrote nothing")
	}
	if got := replicaRegionsOf(t, name); !slices.Equal(got, []string{"eu-north-1", "eu-west-2"}) {
		t.Fatalf("replica regions = %v; want eu-north-1, eu-west-2", got)
	}
	creates := rec.calls("CreateSecret")
	if len(creates) != 1 || !strings.Contains(string(creates[0].Body), `"AddReplicaRegions":[{"KmsKeyId":"bb123123-b2b0-4f60-ac3a-44a13f0e6b6c","Region":"eu-north-1"}`) {
		t.Fatal("CreateSecret did not replicate with the metadata's KMS key")
	}
	if _, err := regionSM("eu-north-1").DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)}); err != nil {
		t.Fatalf("no replica in eu-north-1: %v", err)
	}

	rec.reset()
	if push(t, c, ref, withMeta(key("k", valueCanary), regions("eu-west-2", "eu-north-1"))) {
		t.Fatal("the same regions in another order report a write")
	}
	for _, call := range []string{"ReplicateSecretToRegions", "RemoveRegionsFromReplication"} {
		if n := len(rec.calls(call)); n != 0 {
			t.Fatalf("%d %s calls for unchanged regions", n, call)
		}
	}

	if !push(t, c, ref, withMeta(key("k", valueCanary), regions("eu-west-2", "us-east-2"))) {
		t.Fatal("changing the regions reports no write")
	}
	if got := replicaRegionsOf(t, name); !slices.Equal(got, []string{"eu-west-2", "us-east-2"}) {
		t.Fatalf("replica regions = %v; want eu-west-2, us-east-2", got)
	}
	if _, err := regionSM("eu-north-1").DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)}); err == nil {
		t.Fatal("the replica in eu-north-1 is still there")
	}

	rec.reset()
	if push(t, c, ref, withMeta(key("k", valueCanary), `{"description":"d"}`)) {
		t.Fatal("a push without replicationLocations changed something")
	}
	if got := replicaRegionsOf(t, name); len(got) != 2 || len(rec.calls("RemoveRegionsFromReplication")) != 0 {
		t.Fatalf("replica regions = %v; without replicationLocations they are left alone", got)
	}

	// The store's own region is refused.
	st, err := c.Inspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Push(ctx, ref, withMeta(key("k", valueCanary), regions(region)), st)
	wantErr(t, err, provider.ErrInvalidPush)

	if !push(t, c, ref, withMeta(key("k", valueCanary), regions())) {
		t.Fatal("an empty list reports no write")
	}
	if got := replicaRegionsOf(t, name); len(got) != 0 {
		t.Fatalf("replica regions = %v; an empty list replicates nowhere", got)
	}

	// Delete removes the replicas first.
	const gone = "push-sm/replicated-deleted"
	gref := provider.PushRef{RemoteKey: gone}
	push(t, c, gref, withMeta(key("k", valueCanary), regions("eu-north-1")))
	st, err = c.Inspect(ctx, gref)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, gref, st); err != nil {
		t.Fatalf("deleting a replicated secret: %v", err)
	}
	if d := smDescribe(t, gone); d == nil || d.DeletedDate == nil {
		t.Fatal("the replicated secret is not scheduled for deletion")
	}
}
