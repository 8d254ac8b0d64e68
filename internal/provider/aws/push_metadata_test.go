package aws_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keyferry/keyferry/internal/provider"
)

// pushMeta is ESO's PushSecretMetadata object around spec.
func pushMeta(spec string) []byte {
	return []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":` + spec + `}`)
}

// withMeta is v with the push's metadata.
func withMeta(v provider.PushValue, spec string) provider.PushValue {
	v.Metadata = pushMeta(spec)
	return v
}

// metadataPusher is c as a provider.MetadataPusher.
func metadataPusher(t *testing.T, c provider.Pusher) provider.MetadataPusher {
	t.Helper()
	mp, ok := c.(provider.MetadataPusher)
	if !ok {
		t.Fatal("the client is not a provider.MetadataPusher")
	}
	return mp
}

func wantTags(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	want = maps.Clone(want)
	want[provider.ManagedByKey] = provider.ManagedByValue
	if !maps.Equal(got, want) {
		t.Fatalf("tags = %v; want %v", got, want)
	}
}

func TestPushSecretsManagerHonoursMetadata(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, smSpec())
	const name = "push-sm/metadata"
	ref := provider.PushRef{RemoteKey: name}
	// ESO's example (docs/snippets/aws-sm-push-secret-with-metadata.yaml),
	// with kmsKeyID spelt as there.
	example := `{"kmsKeyID":"bb123123-b2b0-4f60-ac3a-44a13f0e6b6c","secretPushFormat":"string","description":"secret 'managed-by:secret-manager' from 'secret-store:teamb-secret-store'","tags":{"secret-store":"teamb-secret-store","refresh-interval":"1h"}}`
	if err := metadataPusher(t, c).CheckPushMetadata(pushMeta(example)); err != nil {
		t.Fatalf("ESO's example metadata is refused: %v", err)
	}
	v1, v2 := valueCanary+"-1", valueCanary+"-2"
	if !push(t, c, ref, withMeta(key("k", v1), example)) {
		t.Fatal("the first push wrote nothing")
	}
	out, err := adminSM().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.SecretString) != v1 || out.SecretBinary != nil {
		t.Fatal("secretPushFormat string did not write the value as SecretString")
	}
	d := smDescribe(t, name)
	wantTags(t, tagMap(d), map[string]string{"secret-store": "teamb-secret-store", "refresh-interval": "1h"})
	if aws.ToString(d.KmsKeyId) != "bb123123-b2b0-4f60-ac3a-44a13f0e6b6c" {
		t.Errorf("KmsKeyId = %q; want the metadata's", aws.ToString(d.KmsKeyId))
	}
	if aws.ToString(d.Description) != "secret 'managed-by:secret-manager' from 'secret-store:teamb-secret-store'" {
		t.Errorf("Description = %q; want the metadata's", aws.ToString(d.Description))
	}

	// Tags follow the metadata on every push, as in ESO: someone's extra
	// tag and the ones no longer listed go, managed-by stays; the value is
	// not written again.
	if _, err := adminSM().TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(name), Tags: smTagList(map[string]string{"added-by-hand": "x"})}); err != nil {
		t.Fatal(err)
	}
	_, before := smCurrent(t, name)
	retagged := `{"secretPushFormat":"string","tags":{"secret-store":"other","team":"platform"}}`
	if !push(t, c, ref, withMeta(key("k", v1), retagged)) {
		t.Fatal("a push that changed the tags reports no write")
	}
	wantTags(t, tagMap(smDescribe(t, name)), map[string]string{"secret-store": "other", "team": "platform"})
	if _, after := smCurrent(t, name); after != before {
		t.Fatal("retagging wrote a new version of the same value")
	}
	if push(t, c, ref, withMeta(key("k", v1), retagged)) {
		t.Fatal("a push that changed nothing wrote")
	}

	// A new value keeps the format; metadata without tags leaves them.
	if !push(t, c, ref, withMeta(key("k", v2), `{"secretPushFormat":"string"}`)) {
		t.Fatal("a new value was not written")
	}
	out, err = adminSM().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil || aws.ToString(out.SecretString) != v2 || out.SecretBinary != nil {
		t.Fatal("the new value is not the SecretString")
	}
	wantTags(t, tagMap(smDescribe(t, name)), map[string]string{"secret-store": "other", "team": "platform"})

	// binary (ESO's default) writes SecretBinary again.
	push(t, c, ref, withMeta(key("k", valueCanary+"-3"), `{"secretPushFormat":"binary"}`))
	out, err = adminSM().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil || string(out.SecretBinary) != valueCanary+"-3" || out.SecretString != nil {
		t.Fatal("secretPushFormat binary did not write SecretBinary")
	}
}

func TestPushSecretsManagerRefusesMetadataItCannotHonour(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, smSpec())
	ref := provider.PushRef{RemoteKey: "push-sm/metadata-refused"}
	for _, spec := range []string{
		`{"tags":{"managed-by":"someone"}}`,
		`{"secretPushFormat":"text"}`,
		`{"replicationLocations":["eu-north-1","eu-north-1"]}`,
		`{"replicationLocations":["` + region + `"]}`,
		`{"resourcePolicy":{"blockPublicPolicy":true}}`,
		`{"secretType":"SecureString"}`,
	} {
		err := metadataPusher(t, c).CheckPushMetadata(pushMeta(spec))
		wantErr(t, err, provider.ErrInvalidPush)
		st, ierr := c.Inspect(ctx, ref)
		if ierr != nil {
			t.Fatal(ierr)
		}
		_, err = c.Push(ctx, ref, withMeta(key("k", valueCanary), spec), st)
		wantErr(t, err, provider.ErrInvalidPush)
	}
	if smDescribe(t, ref.RemoteKey) != nil {
		t.Fatal("a push with refused metadata created the secret")
	}
}

func smTagList(tags map[string]string) []smtypes.Tag {
	var out []smtypes.Tag
	for k, v := range tags {
		out = append(out, smtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	return out
}

// psDescribe is the parameter's DescribeParameters entry as moto returns
// it, decoded loosely: moto returns a tier policy's PolicyText as an
// object, which the SDK's string field cannot take.
func psDescribe(t *testing.T, name string) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"ParameterFilters": []map[string]any{{"Key": "Name", "Values": []string{name}}}})
	req, err := http.NewRequest(http.MethodPost, env.moto.Endpoint(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.DescribeParameters")
	// moto reads the region (its backend) from the credential scope; it
	// does not check the signature.
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAADMIN/20260101/"+region+"/ssm/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Parameters []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DescribeParameters: status %d, %v", resp.StatusCode, err)
	}
	if len(out.Parameters) != 1 {
		t.Fatalf("DescribeParameters found %d parameters named %s", len(out.Parameters), name)
	}
	return out.Parameters[0]
}

func TestPushParameterStoreHonoursMetadata(t *testing.T) {
	c := pusher(t, psSpec())
	const name = "/push-ps/metadata"
	ref := provider.PushRef{RemoteKey: name}
	// ESO's example (docs/snippets/aws-pm-push-secret-with-metadata.yaml).
	example := `{"description":"This is a secret for the API credentials","secretType":"SecureString","kmsKeyID":"bb123123-b2b0-4f60-ac3a-44a13f0e6b6c",
		"tier":{"type":"Advanced","policies":[{"type":"Expiration","version":"1.0","attributes":{"timestamp":"2024-12-02T21:34:33.000Z"}},{"type":"NoChangeNotification","version":"1.0","attributes":{"after":"30","unit":"Days"}}]},
		"tags":{"environment":"sandbox","team":"pokedex"}}`
	if err := metadataPusher(t, c).CheckPushMetadata(pushMeta(example)); err != nil {
		t.Fatalf("ESO's example metadata is refused: %v", err)
	}
	whole := provider.PushValue{Secret: map[string][]byte{"user": []byte("ash"), "password": []byte(valueCanary)}}
	if !push(t, c, ref, withMeta(whole, example)) {
		t.Fatal("the first push wrote nothing")
	}
	p := psParameter(t, name)
	if p == nil || p.Type != ssmtypes.ParameterTypeSecureString {
		t.Fatal("the parameter is not a SecureString")
	}
	// Without encodeAsDecoded the whole Secret's values are base64, as ESO.
	if got := jsonObject(t, []byte(aws.ToString(p.Value))); got["password"] != base64.StdEncoding.EncodeToString([]byte(valueCanary)) {
		t.Fatal("the whole Secret's values are not base64")
	}
	d := psDescribe(t, name)
	if d["KeyId"] != "bb123123-b2b0-4f60-ac3a-44a13f0e6b6c" || d["Tier"] != "Advanced" || d["Description"] != "This is a secret for the API credentials" {
		t.Fatalf("KeyId %v, Tier %v, Description %v; want the metadata's", d["KeyId"], d["Tier"], d["Description"])
	}
	if pol, _ := d["Policies"].([]any); len(pol) != 2 {
		t.Fatalf("the parameter has %d policies; want the metadata's 2", len(pol))
	}
	wantTags(t, psTags(t, name), map[string]string{"environment": "sandbox", "team": "pokedex"})

	// As in ESO, a push that does not change the value changes nothing,
	// tags included.
	if push(t, c, ref, withMeta(whole, `{"secretType":"SecureString","tags":{"team":"other"}}`)) {
		t.Fatal("a push of the same value wrote")
	}
	wantTags(t, psTags(t, name), map[string]string{"environment": "sandbox", "team": "pokedex"})

	// A new value (encodeAsDecoded: plain strings) brings the metadata's
	// tags: the ones not listed go, managed-by stays.
	decoded := `{"secretType":"SecureString","encodeAsDecoded":true,"tags":{"team":"other"}}`
	if !push(t, c, ref, withMeta(whole, decoded)) {
		t.Fatal("encodeAsDecoded did not change the value")
	}
	p = psParameter(t, name)
	if got := jsonObject(t, []byte(aws.ToString(p.Value))); got["password"] != valueCanary || got["user"] != "ash" || p.Type != ssmtypes.ParameterTypeSecureString {
		t.Fatal("encodeAsDecoded did not write the values as plain strings in a SecureString")
	}
	wantTags(t, psTags(t, name), map[string]string{"team": "other"})
}

func TestPushParameterStoreMetadataTypes(t *testing.T) {
	c := pusher(t, psSpec())
	for _, tc := range []struct {
		name, spec string
		want       ssmtypes.ParameterType
	}{
		{name: "/push-ps/meta-default", spec: `{}`, want: ssmtypes.ParameterTypeString},
		{name: "/push-ps/meta-list", spec: `{"secretType":"StringList"}`, want: ssmtypes.ParameterTypeStringList},
		{name: "/push-ps/meta-secure", spec: `{"secretType":"SecureString"}`, want: ssmtypes.ParameterTypeSecureString},
	} {
		push(t, c, provider.PushRef{RemoteKey: tc.name}, withMeta(key("k", "a,b"), tc.spec))
		if p := psParameter(t, tc.name); p == nil || p.Type != tc.want {
			t.Fatalf("%s: the parameter is not a %s", tc.name, tc.want)
		}
		if d := psDescribe(t, tc.name); d["Tier"] != "Standard" {
			t.Fatalf("%s: tier %v; want Standard", tc.name, d["Tier"])
		}
	}
	// A String becomes a SecureString when the metadata says so.
	const name = "/push-ps/meta-default"
	push(t, c, provider.PushRef{RemoteKey: name}, withMeta(key("k", valueCanary), `{"secretType":"SecureString"}`))
	if p := psParameter(t, name); p.Type != ssmtypes.ParameterTypeSecureString || aws.ToString(p.Value) != valueCanary {
		t.Fatalf("the parameter is a %s; want a SecureString with the new value", p.Type)
	}

	err := metadataPusher(t, c).CheckPushMetadata(pushMeta(`{"tier":{"type":"Premium"}}`))
	wantErr(t, err, provider.ErrInvalidPush)
}

// Deleting a property of a secret pushed as SecretString writes the rest
// as SecretString again.
func TestPushSecretsManagerDeletingAPropertyKeepsTheFormat(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, smSpec())
	const name = "push-sm/metadata-props"
	str := `{"secretPushFormat":"string"}`
	push(t, c, provider.PushRef{RemoteKey: name, Property: "a"}, withMeta(key("a", valueCanary+"-a"), str))
	push(t, c, provider.PushRef{RemoteKey: name, Property: "b"}, withMeta(key("b", valueCanary+"-b"), str))
	ref := provider.PushRef{RemoteKey: name, Property: "a"}
	if err := c.Delete(ctx, ref, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	out, err := adminSM().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil || out.SecretBinary != nil {
		t.Fatalf("the rest is not a SecretString (%v)", err)
	}
	if got := jsonObject(t, []byte(aws.ToString(out.SecretString))); len(got) != 1 || got["b"] != valueCanary+"-b" {
		t.Fatalf("the rest has keys %v; want b", pushedKeys(got))
	}
}
