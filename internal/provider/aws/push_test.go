package aws_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
)

// pusher builds a client for spec and returns it as a provider.Pusher.
func pusher(t *testing.T, spec esv1.AWSProvider) provider.Pusher {
	t.Helper()
	p, ok := newClient(t, motoProvider(nil), spec).(provider.Pusher)
	if !ok {
		t.Fatalf("the %s client is not a provider.Pusher", spec.Service)
	}
	return p
}

// push inspects ref and pushes v as the PushSecret controller does,
// failing the test on error; it returns whether the push wrote.
func push(t *testing.T, p provider.Pusher, ref provider.PushRef, v provider.PushValue) bool {
	t.Helper()
	ctx := context.Background()
	st, err := p.Inspect(ctx, ref)
	if err != nil {
		assertNoCanary(t, err)
		t.Fatalf("Inspect(%s): %v", ref, err)
	}
	wrote, err := p.Push(ctx, ref, v, st)
	if err != nil {
		assertNoCanary(t, err)
		t.Fatalf("Push(%s): %v", ref, err)
	}
	return wrote
}

func key(k, v string) provider.PushValue { return provider.PushValue{SecretKey: k, Value: []byte(v)} }

// wantErr fails unless err wraps target and quotes no canary.
func wantErr(t *testing.T, err, target error, canaries ...string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v; want %v", err, target)
	}
	assertNoCanary(t, err, canaries...)
}

// smCurrent reads a secret's current value and VersionId as the account's
// admin; nil when it cannot be read (missing or scheduled for deletion).
func smCurrent(t *testing.T, name string) ([]byte, string) {
	t.Helper()
	out, err := adminSM().GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return nil, ""
	}
	if out.SecretString != nil {
		return []byte(*out.SecretString), aws.ToString(out.VersionId)
	}
	return out.SecretBinary, aws.ToString(out.VersionId)
}

func smDescribe(t *testing.T, name string) *secretsmanager.DescribeSecretOutput {
	t.Helper()
	out, err := adminSM().DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		return nil
	}
	return out
}

func jsonObject(t *testing.T, b []byte) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("the remote value is not a JSON object of strings (%d bytes)", len(b))
	}
	return m
}

func TestPushSecretsManagerCreatesTagsAndWritesOnlyWhatChanged(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, smSpec())
	const name = "push-sm/create"
	v1, v2 := valueCanary+"-1", valueCanary+"-2"

	if !push(t, c, provider.PushRef{RemoteKey: name}, key("k", v1)) {
		t.Fatal("the first push wrote nothing")
	}
	out, err := adminSM().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	// ESO's default secretPushFormat is binary.
	if string(out.SecretBinary) != v1 || out.SecretString != nil {
		t.Fatal("the secret does not hold the pushed value as SecretBinary")
	}
	d := smDescribe(t, name)
	if got := tagMap(d); got[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("tags = %v; want ESO's managed-by: external-secrets", got)
	}
	if aws.ToString(out.VersionId) != "00000000-0000-0000-0000-000000000001" {
		t.Errorf("first VersionId = %s; want ESO's initial version", aws.ToString(out.VersionId))
	}

	if push(t, c, provider.PushRef{RemoteKey: name}, key("k", v1)) {
		t.Fatal("pushing the value the secret holds wrote")
	}
	if _, ver := smCurrent(t, name); ver != aws.ToString(out.VersionId) {
		t.Fatalf("VersionId %s → %s after a push of the same value", aws.ToString(out.VersionId), ver)
	}

	// A property goes into the existing JSON object, its other keys kept.
	const obj = "push-sm/object"
	if !push(t, c, provider.PushRef{RemoteKey: obj}, key("k", `{"user":"admin","port":5432}`)) {
		t.Fatal("nothing written")
	}
	ref := provider.PushRef{RemoteKey: obj, Property: "password"}
	if !push(t, c, ref, key("p", v2)) {
		t.Fatal("the property push wrote nothing")
	}
	cur, ver := smCurrent(t, obj)
	var m map[string]any
	if err := json.Unmarshal(cur, &m); err != nil || m["user"] != "admin" || m["port"] != float64(5432) || m["password"] != v2 {
		t.Fatalf("the object after the property push has keys %v; want user and port kept, password set", pushedKeys(m))
	}
	if push(t, c, ref, key("p", v2)) {
		t.Fatal("pushing the property's value again wrote")
	}
	st, err := c.Inspect(ctx, ref)
	if err != nil || !st.Exists || !st.Managed || !st.PropertyExists || st.Version != ver {
		t.Fatalf("Inspect = %+v, %v; want an existing managed secret with the property at version %s", st, err, ver)
	}
	if st, err := c.Inspect(ctx, provider.PushRef{RemoteKey: "push-sm/missing"}); err != nil || st != (provider.RemoteState{}) {
		t.Fatalf("Inspect of a missing secret = %+v, %v; want the zero state", st, err)
	}
}

func TestPushSecretsManagerNeverWritesOrDeletesASecretItDidNotCreate(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, smSpec())
	const name = "push-sm/foreign"
	theirs := `{"password":"` + valueCanary + `-theirs"}`
	created := createSecret(t, name, theirs, map[string]string{"owner": "not-keyferry"})
	ref := provider.PushRef{RemoteKey: name, Property: "password"}
	st, err := c.Inspect(ctx, ref)
	if err != nil || !st.Exists || st.Managed || !st.PropertyExists {
		t.Fatalf("Inspect = %+v, %v; want an existing secret, not managed, with the property", st, err)
	}
	_, err = c.Push(ctx, ref, key("p", valueCanary+"-mine"), st)
	wantErr(t, err, provider.ErrNotManaged, valueCanary+"-mine")
	// Even with a state that says otherwise, Delete checks for itself.
	for _, r := range []provider.PushRef{ref, {RemoteKey: name}} {
		if err := c.Delete(ctx, r, provider.RemoteState{Exists: true, Managed: true}); err != nil {
			t.Fatalf("Delete(%s): %v", r, err)
		}
	}
	cur, ver := smCurrent(t, name)
	if string(cur) != theirs || ver != aws.ToString(created.VersionId) {
		t.Fatal("the foreign secret was written or deleted")
	}
}

func TestPushSecretsManagerIsACheckAndSet(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, smSpec())
	const name = "push-sm/cas"
	ref := provider.PushRef{RemoteKey: name, Property: "a"}
	push(t, c, ref, key("a", valueCanary+"-1"))
	st, err := c.Inspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else writes between keyferry's read and its write.
	other := `{"a":"` + valueCanary + `-other"}`
	putSecret(t, name, other)
	_, err = c.Push(ctx, ref, key("a", valueCanary+"-3"), st)
	wantErr(t, err, provider.ErrConflict, valueCanary+"-3")
	if cur, _ := smCurrent(t, name); string(cur) != other {
		t.Fatal("the other writer's value is no longer current")
	}
	// From a fresh state the push goes through.
	if !push(t, c, ref, key("a", valueCanary+"-3")) {
		t.Fatal("the push after the conflict wrote nothing")
	}
}

func TestPushSecretsManagerRefusesWhatItCannotWrite(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, smSpec())
	// A property cannot go into a value that is not a JSON object.
	push(t, c, provider.PushRef{RemoteKey: "push-sm/plain"}, key("k", valueCanary))
	ref := provider.PushRef{RemoteKey: "push-sm/plain", Property: "p"}
	st, err := c.Inspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Push(ctx, ref, key("p", "x"), st)
	wantErr(t, err, provider.ErrInvalidPush)
	if cur, _ := smCurrent(t, "push-sm/plain"); string(cur) != valueCanary {
		t.Fatal("the refused push changed the secret")
	}
	// A property that is a gjson query, not a path of keys.
	_, err = c.Push(ctx, provider.PushRef{RemoteKey: "push-sm/query", Property: "friends.#.first"}, key("p", valueCanary), provider.RemoteState{})
	wantErr(t, err, provider.ErrInvalidPush)
	if smDescribe(t, "push-sm/query") != nil {
		t.Fatal("the refused push created a secret")
	}
}

func TestPushSecretsManagerWholeSecretAndDelete(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, smSpec())
	const name = "push-sm/whole"
	a, b := valueCanary+"-a", valueCanary+"-b<&>"
	push(t, c, provider.PushRef{RemoteKey: name}, provider.PushValue{Secret: map[string][]byte{"a": []byte(a), "b": []byte(b)}})
	cur, _ := smCurrent(t, name)
	if got := jsonObject(t, cur); got["a"] != a || got["b"] != b || len(got) != 2 {
		t.Fatalf("whole Secret pushed as keys %v; want a and b as strings", pushedKeys(got))
	}
	if strings.Contains(string(cur), `\u003c`) {
		t.Error("the JSON escapes HTML characters; ESO does not")
	}

	// Deleting one property keeps the secret; the last one deletes it,
	// scheduled for deletion with AWS's default recovery window (ESO's
	// default).
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: name, Property: "a"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	cur, _ = smCurrent(t, name)
	if got := jsonObject(t, cur); len(got) != 1 || got["b"] != b {
		t.Fatalf("after deleting property a the keys are %v; want only b", pushedKeys(got))
	}
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: name, Property: "b"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	d := smDescribe(t, name)
	if d == nil || d.DeletedDate == nil {
		t.Fatal("the secret is not scheduled for deletion after its last property was deleted")
	}
	if st, err := c.Inspect(ctx, provider.PushRef{RemoteKey: name}); err != nil || st.Exists {
		t.Fatalf("Inspect of a secret scheduled for deletion = %+v, %v; want it missing", st, err)
	}
	// Deleting again is a no-op.
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: name}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}

	// Pushing again restores keyferry's secret and writes the new value.
	again := valueCanary + "-again"
	if !push(t, c, provider.PushRef{RemoteKey: name}, key("k", again)) {
		t.Fatal("the push after the deletion wrote nothing")
	}
	if cur, _ := smCurrent(t, name); string(cur) != again {
		t.Fatal("the restored secret does not hold the new value")
	}

	// The store's forceDeleteWithoutRecovery deletes at once.
	spec := smSpec()
	spec.SecretsManager = &esv1.AWSSecretsManager{ForceDeleteWithoutRecovery: true}
	force := pusher(t, spec)
	if err := force.Delete(ctx, provider.PushRef{RemoteKey: name}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if smDescribe(t, name) != nil {
		t.Fatal("the secret still exists after a delete with forceDeleteWithoutRecovery")
	}
}

// A dotted property nests, as ESO's sjson writes it and as ExternalSecrets
// read it (gjson); an escaped dot is part of a key. Deleting the last
// nested key drops the objects it leaves empty, and then the secret.
func TestPushSecretsManagerNestedPropertiesReadBack(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, smSpec())
	const name = "push-sm/nested"
	crt, k, lit := valueCanary+"-crt", valueCanary+"-key", valueCanary+"-lit"
	push(t, c, provider.PushRef{RemoteKey: name, Property: "tls.crt"}, key("tls.crt", crt))
	push(t, c, provider.PushRef{RemoteKey: name, Property: "tls.key"}, key("tls.key", k))
	push(t, c, provider.PushRef{RemoteKey: name, Property: `ca\.crt`}, key("ca.crt", lit))
	v, err := c.(provider.Client).GetSecret(ctx, provider.Ref{Key: name})
	if err != nil {
		t.Fatal(err)
	}
	for property, want := range map[string]string{"tls.crt": crt, "tls.key": k, `ca\.crt`: lit} {
		got, err := values.Property(v, property)
		if err != nil || string(got) != want {
			t.Fatalf("reading property %q back: %v; want the pushed value", property, err)
		}
	}
	for _, p := range []string{"tls.crt", `ca\.crt`, "tls.key"} {
		if err := c.Delete(ctx, provider.PushRef{RemoteKey: name, Property: p}, provider.RemoteState{}); err != nil {
			t.Fatal(err)
		}
		if p == "tls.crt" {
			cur, _ := smCurrent(t, name)
			if !strings.Contains(string(cur), `"tls":{"key"`) || strings.Contains(string(cur), `"crt"`) {
				t.Fatal("deleting tls.crt did not keep tls.key alone")
			}
		}
	}
	if d := smDescribe(t, name); d == nil || d.DeletedDate == nil {
		t.Fatal("the secret is not scheduled for deletion after its last nested key was deleted")
	}
}

// --- Parameter Store ---------------------------------------------------------

func psParameter(t *testing.T, name string) *ssmtypes.Parameter {
	t.Helper()
	out, err := adminSSM().GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil
	}
	return out.Parameter
}

func psTags(t *testing.T, name string) map[string]string {
	t.Helper()
	out, err := adminSSM().ListTagsForResource(context.Background(), &ssm.ListTagsForResourceInput{
		ResourceId: aws.String(name), ResourceType: ssmtypes.ResourceTypeForTaggingParameter,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, tag := range out.TagList {
		m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return m
}

func TestPushParameterStoreCreatesTagsAndWritesOnlyWhatChanged(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, psSpec())
	const name = "/push-ps/create"
	v1, v2 := valueCanary+"-1", valueCanary+"-2"
	if !push(t, c, provider.PushRef{RemoteKey: name}, key("k", v1)) {
		t.Fatal("the first push wrote nothing")
	}
	p := psParameter(t, name)
	// ESO's default secretType is String.
	if p == nil || aws.ToString(p.Value) != v1 || p.Type != ssmtypes.ParameterTypeString || p.Version != 1 {
		t.Fatal("the parameter is not a String holding the pushed value at version 1")
	}
	if got := psTags(t, name); got[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("tags = %v; want ESO's managed-by: external-secrets", got)
	}
	if push(t, c, provider.PushRef{RemoteKey: name}, key("k", v1)) {
		t.Fatal("pushing the value the parameter holds wrote")
	}
	if p := psParameter(t, name); p.Version != 1 {
		t.Fatalf("version %d after a push of the same value; want 1", p.Version)
	}
	if !push(t, c, provider.PushRef{RemoteKey: name}, key("k", v2)) {
		t.Fatal("a new value was not written")
	}
	if p := psParameter(t, name); aws.ToString(p.Value) != v2 || p.Version != 2 {
		t.Fatal("the parameter does not hold the new value at version 2")
	}

	// A property goes into the existing JSON object, its other keys kept.
	const obj = "/push-ps/object"
	push(t, c, provider.PushRef{RemoteKey: obj}, key("k", `{"user":"admin"}`))
	ref := provider.PushRef{RemoteKey: obj, Property: "password"}
	push(t, c, ref, key("p", v2))
	if got := jsonObject(t, []byte(aws.ToString(psParameter(t, obj).Value))); got["user"] != "admin" || got["password"] != v2 {
		t.Fatalf("the object after the property push has keys %v; want user kept, password set", pushedKeys(got))
	}
	st, err := c.Inspect(ctx, ref)
	if err != nil || !st.Exists || !st.Managed || !st.PropertyExists || st.Version != "2" {
		t.Fatalf("Inspect = %+v, %v; want an existing managed parameter with the property at version 2", st, err)
	}
}

func TestPushParameterStoreNeverWritesOrDeletesAParameterItDidNotCreate(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, psSpec())
	const name = "/push-ps/foreign"
	theirs := `{"password":"` + valueCanary + `-theirs"}`
	putParameter(t, name, theirs, ssmtypes.ParameterTypeSecureString, map[string]string{"owner": "not-keyferry"})
	ref := provider.PushRef{RemoteKey: name, Property: "password"}
	st, err := c.Inspect(ctx, ref)
	if err != nil || !st.Exists || st.Managed || !st.PropertyExists {
		t.Fatalf("Inspect = %+v, %v; want an existing parameter, not managed, with the property", st, err)
	}
	_, err = c.Push(ctx, ref, key("p", valueCanary+"-mine"), st)
	wantErr(t, err, provider.ErrNotManaged, valueCanary+"-mine")
	for _, r := range []provider.PushRef{ref, {RemoteKey: name}} {
		if err := c.Delete(ctx, r, provider.RemoteState{Exists: true, Managed: true}); err != nil {
			t.Fatalf("Delete(%s): %v", r, err)
		}
	}
	if p := psParameter(t, name); p == nil || aws.ToString(p.Value) != theirs || p.Version != 1 {
		t.Fatal("the foreign parameter was written or deleted")
	}
}

func TestPushParameterStoreChecksTheVersionAndKeepsTheType(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, psSpec())
	const name = "/push-ps/cas"
	push(t, c, provider.PushRef{RemoteKey: name}, key("k", valueCanary+"-1"))
	st, err := c.Inspect(ctx, provider.PushRef{RemoteKey: name})
	if err != nil {
		t.Fatal(err)
	}
	// Someone else writes (a SecureString now) after keyferry's read.
	other := valueCanary + "-other"
	putParameter(t, name, other, ssmtypes.ParameterTypeSecureString, nil)
	_, err = c.Push(ctx, provider.PushRef{RemoteKey: name}, key("k", valueCanary+"-3"), st)
	wantErr(t, err, provider.ErrConflict, valueCanary+"-3")
	if p := psParameter(t, name); aws.ToString(p.Value) != other {
		t.Fatal("the other writer's value was overwritten")
	}
	// From a fresh state the push goes through, and the parameter stays a
	// SecureString.
	push(t, c, provider.PushRef{RemoteKey: name}, key("k", valueCanary+"-3"))
	if p := psParameter(t, name); aws.ToString(p.Value) != valueCanary+"-3" || p.Type != ssmtypes.ParameterTypeSecureString {
		t.Fatalf("the parameter is a %s; want the new value in a SecureString", p.Type)
	}
}

func TestPushParameterStoreRefusesWhatItCannotWrite(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, psSpec())
	push(t, c, provider.PushRef{RemoteKey: "/push-ps/plain"}, key("k", valueCanary))
	ref := provider.PushRef{RemoteKey: "/push-ps/plain", Property: "p"}
	st, err := c.Inspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Push(ctx, ref, key("p", "x"), st)
	wantErr(t, err, provider.ErrInvalidPush)
	if p := psParameter(t, "/push-ps/plain"); aws.ToString(p.Value) != valueCanary || p.Version != 1 {
		t.Fatal("the refused push changed the parameter")
	}
	// A property that is a gjson query, not a path of keys.
	_, err = c.Push(ctx, provider.PushRef{RemoteKey: "/push-ps/query", Property: "a*"}, key("p", valueCanary), provider.RemoteState{})
	wantErr(t, err, provider.ErrInvalidPush)
	if psParameter(t, "/push-ps/query") != nil {
		t.Fatal("the refused push created a parameter")
	}
}

func TestPushParameterStoreWholeSecretAndDelete(t *testing.T) {
	ctx := context.Background()
	c := pusher(t, psSpec())
	const name = "/push-ps/whole"
	a, b := valueCanary+"-a", valueCanary+"-b"
	push(t, c, provider.PushRef{RemoteKey: name}, provider.PushValue{Secret: map[string][]byte{"a": []byte(a), "b": []byte(b)}})
	// ESO's Parameter Store encodes the whole Secret's values as base64
	// (without its encodeAsDecoded metadata).
	got := jsonObject(t, []byte(aws.ToString(psParameter(t, name).Value)))
	if got["a"] != base64.StdEncoding.EncodeToString([]byte(a)) || got["b"] != base64.StdEncoding.EncodeToString([]byte(b)) || len(got) != 2 {
		t.Fatalf("whole Secret pushed as keys %v; want a and b, base64", pushedKeys(got))
	}
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: name, Property: "a"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if got := jsonObject(t, []byte(aws.ToString(psParameter(t, name).Value))); len(got) != 1 || got["b"] == "" {
		t.Fatalf("after deleting property a the keys are %v; want only b", pushedKeys(got))
	}
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: name, Property: "b"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if psParameter(t, name) != nil {
		t.Fatal("the parameter still exists after its last property was deleted")
	}
	// A whole-parameter delete, and a delete of what is gone.
	push(t, c, provider.PushRef{RemoteKey: name}, key("k", valueCanary))
	for range 2 {
		if err := c.Delete(ctx, provider.PushRef{RemoteKey: name}, provider.RemoteState{}); err != nil {
			t.Fatal(err)
		}
	}
	if psParameter(t, name) != nil {
		t.Fatal("the parameter still exists after Delete")
	}
}

func tagMap(d *secretsmanager.DescribeSecretOutput) map[string]string {
	m := map[string]string{}
	if d == nil {
		return m
	}
	for _, t := range d.Tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func pushedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
