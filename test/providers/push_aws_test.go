package providers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// awsPushExampleDir holds ESO's AWS PushSecret examples, unchanged, with
// the stores they name (ESO's store snippets under those names) and
// examples/aws's credentials Secret.
const awsPushExampleDir = "examples/pushsecret/aws"

// ESO's PushSecret example of the AWS Secrets Manager guide (in namespace
// teamb, through teamb-secret-store), applied unchanged, pushes key1 of
// my-secret to teamb-my-first-parameter-3 with its data[].metadata as ESO
// does: a SecretString (secretPushFormat: string), the metadata's tags
// beside managed-by: external-secrets, its description and KMS key. The
// same PushSecret without its metadata (to another remote key) pushes as
// ESO does without (SecretBinary, tag managed-by: external-secrets). Both
// push a change of the source; a secret keyferry did not create is
// refused, and deletionPolicy Delete schedules only what was pushed for
// deletion (AWS's default recovery window: the store sets no
// secretsManager options).
func TestPushAWSSecretsManagerESOExample(t *testing.T) {
	const ns, remote, foreign = "teamb", "teamb-my-first-parameter-3", "teamb-foreign-kf"
	const plain = remote + "-without-metadata"
	ctx := context.Background()
	dir := awsPushExampleDir + "/secretsmanager"
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	secretMustNotLeak(exampleStringData(t, dir, "00-awssm-secret.yaml")["secret-access-key"])
	sm := adminSM(awsRegion)
	v1, v2 := "charmander-"+canary, "charizard-"+canary
	env.Apply(t, ns, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: my-secret\nstringData:\n  key1: %s\n", v1))
	env.Apply(t, ns, dir)
	deleteAWSPushSecretsOnCleanup(t, ns, "pushsecret-example", "pushsecret-example-without-metadata", "to-foreign")

	t.Run("the unchanged example pushes with its metadata", func(t *testing.T) {
		waitAWSPushReady(t, ns, "pushsecret-example", corev1.ConditionTrue, pushsecret.ReasonSynced)
		d := smSecret(t, remote)
		if d == nil {
			t.Fatal("the example did not create the secret")
		}
		wantTags := map[string]string{provider.ManagedByKey: provider.ManagedByValue, "secret-store": "teamb-secret-store", "refresh-interval": "1h"}
		if got := smTags(d.Tags); !maps.Equal(got, wantTags) {
			t.Fatalf("tags = %v; want the metadata's and managed-by: external-secrets", got)
		}
		if aws.ToString(d.KmsKeyId) != "bb123123-b2b0-4f60-ac3a-44a13f0e6b6c" || aws.ToString(d.Description) != "secret 'managed-by:secret-manager' from 'secret-store:teamb-secret-store'" {
			t.Fatalf("KmsKeyId %q, description %q; want the metadata's", aws.ToString(d.KmsKeyId), aws.ToString(d.Description))
		}
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(remote)})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.SecretString) != v1 || out.SecretBinary != nil {
			t.Fatal("the secret does not hold key1 as SecretString (the metadata's secretPushFormat: string)")
		}
	})

	t.Run("without metadata it pushes as ESO, tagged", func(t *testing.T) {
		env.WaitStoreReady(t, ns, "teamb-secret-store")
		applyWithoutMetadata(t, ns, dir+"/20-pushsecret.yaml", "pushsecret-example-without-metadata", plain)
		waitAWSPushReady(t, ns, "pushsecret-example-without-metadata", corev1.ConditionTrue, pushsecret.ReasonSynced)
		d := smSecret(t, plain)
		if d == nil || smTags(d.Tags)[provider.ManagedByKey] != provider.ManagedByValue {
			t.Fatal("the pushed secret lacks ESO's tag managed-by: external-secrets")
		}
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(plain)})
		if err != nil {
			t.Fatal(err)
		}
		if string(out.SecretBinary) != v1 || out.SecretString != nil {
			t.Fatal("the secret does not hold key1 as SecretBinary (ESO's default secretPushFormat)")
		}
	})

	t.Run("a change of the source Secret is pushed", func(t *testing.T) {
		updateAWSPushSource(t, ns, "my-secret", map[string]string{"key1": v2})
		testenv.Eventually(t, remote+" and "+plain+" updated", func(ctx context.Context) (bool, string) {
			out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(remote)})
			if err != nil {
				return false, err.Error()
			}
			if aws.ToString(out.SecretString) != v2 {
				return false, remote + " not updated yet"
			}
			out, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(plain)})
			if err != nil {
				return false, err.Error()
			}
			return string(out.SecretBinary) == v2, plain + " not updated yet"
		})
	})

	theirs := "theirs-" + canary
	t.Run("a secret keyferry did not create is not overwritten", func(t *testing.T) {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(foreign), SecretString: aws.String(theirs)}); err != nil {
			t.Fatal(err)
		}
		env.Apply(t, ns, awsPushSecretYAML("to-foreign", "teamb-secret-store", "my-secret", "key1", foreign))
		waitAWSPushReady(t, ns, "to-foreign", corev1.ConditionFalse, pushsecret.ReasonRemoteNotManaged)
		assertSMString(t, foreign, theirs)
	})

	t.Run("deletionPolicy Delete deletes only what was pushed", func(t *testing.T) {
		for _, name := range []string{"pushsecret-example-without-metadata", "to-foreign", "pushsecret-example"} {
			deleteAWSPushSecret(t, ns, name)
		}
		for _, name := range []string{remote, plain} {
			if d := smSecret(t, name); d == nil || d.DeletedDate == nil {
				t.Fatalf("%s is not scheduled for deletion", name)
			}
		}
		assertSMString(t, foreign, theirs)
	})
	assertAWSPushNoLeak(t, ns, "pushsecret-example", "pushsecret-example-without-metadata", "to-foreign")
}

// ESO's PushSecret example of the AWS Parameter Store guide (in namespace
// default, through aws-parameterstore), applied unchanged, pushes the
// whole pokedex-credentials Secret to my-first-parameter with its
// data[].metadata as ESO does: a SecureString holding a JSON object of
// base64 values (no encodeAsDecoded), tagged with the metadata's tags
// beside managed-by: external-secrets. Without its metadata (to another
// parameter) it pushes as ESO does without (a String). Both push a change
// of the source; a parameter keyferry did not create is refused, and
// deletionPolicy Delete deletes only the parameters pushed.
func TestPushAWSParameterStoreESOExample(t *testing.T) {
	const ns, remote, foreign = "default", "my-first-parameter", "/kf-push/foreign"
	const plain = remote + "-without-metadata"
	ctx := context.Background()
	dir := awsPushExampleDir + "/parameterstore"
	// Other providers' tests use ESO's example name in default too.
	waitAWSPushSecretGone(t, ns, "pushsecret-example")
	secretMustNotLeak(exampleStringData(t, dir, "00-awssm-secret.yaml")["secret-access-key"])
	ps := awsPushAdminSSM()
	v1, v2 := "pikachu-"+canary, "raichu-"+canary
	env.Apply(t, ns, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: pokedex-credentials\nstringData:\n  best-pokemon: %s\n", v1))
	env.Apply(t, ns, dir)
	deleteAWSPushSecretsOnCleanup(t, ns, "pushsecret-example", "pushsecret-example-without-metadata", "to-foreign-parameter")

	wantWhole := func(v string) string {
		b, _ := json.Marshal(map[string]string{"best-pokemon": base64.StdEncoding.EncodeToString([]byte(v))})
		return string(b)
	}
	t.Run("the unchanged example pushes with its metadata", func(t *testing.T) {
		waitAWSPushReady(t, ns, "pushsecret-example", corev1.ConditionTrue, pushsecret.ReasonSynced)
		p := awsParameter(t, remote)
		if p == nil || aws.ToString(p.Value) != wantWhole(v1) || p.Type != ssmtypes.ParameterTypeSecureString {
			t.Fatal("the parameter is not a SecureString (the metadata's secretType) holding the Secret as a JSON object of base64 values")
		}
		tags, err := ps.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceId: aws.String(remote), ResourceType: ssmtypes.ResourceTypeForTaggingParameter})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{provider.ManagedByKey: provider.ManagedByValue, "environment": "sandbox", "team": "pokedex", "secret-store": "aws-parameterstore", "refresh-interval": "1h"}
		got := map[string]string{}
		for _, tag := range tags.TagList {
			got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("tags = %v; want the metadata's and managed-by: external-secrets", got)
		}
	})

	t.Run("without metadata it pushes the whole Secret as ESO, tagged", func(t *testing.T) {
		env.WaitStoreReady(t, ns, "aws-parameterstore")
		applyWithoutMetadata(t, ns, dir+"/20-pushsecret.yaml", "pushsecret-example-without-metadata", plain)
		waitAWSPushReady(t, ns, "pushsecret-example-without-metadata", corev1.ConditionTrue, pushsecret.ReasonSynced)
		p := awsParameter(t, plain)
		if p == nil || aws.ToString(p.Value) != wantWhole(v1) || p.Type != ssmtypes.ParameterTypeString {
			t.Fatal("the parameter is not a String holding the Secret as a JSON object of base64 values")
		}
		tags, err := ps.ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceId: aws.String(plain), ResourceType: ssmtypes.ResourceTypeForTaggingParameter})
		if err != nil {
			t.Fatal(err)
		}
		if !hasSSMTag(tags.TagList, provider.ManagedByKey, provider.ManagedByValue) {
			t.Fatal("the pushed parameter lacks ESO's tag managed-by: external-secrets")
		}
	})

	t.Run("a change of the source Secret is pushed", func(t *testing.T) {
		updateAWSPushSource(t, ns, "pokedex-credentials", map[string]string{"best-pokemon": v2})
		testenv.Eventually(t, remote+" and "+plain+" updated", func(context.Context) (bool, string) {
			for _, name := range []string{remote, plain} {
				if p := awsParameter(t, name); p == nil || aws.ToString(p.Value) != wantWhole(v2) {
					return false, name + " not updated yet"
				}
			}
			return true, ""
		})
		if p := awsParameter(t, remote); p.Type != ssmtypes.ParameterTypeSecureString {
			t.Fatalf("%s is a %s after the update; want a SecureString", remote, p.Type)
		}
	})

	theirs := "theirs-" + canary
	t.Run("a parameter keyferry did not create is not overwritten", func(t *testing.T) {
		if _, err := ps.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(foreign), Value: aws.String(theirs), Type: ssmtypes.ParameterTypeSecureString}); err != nil {
			t.Fatal(err)
		}
		env.Apply(t, ns, awsPushSecretYAML("to-foreign-parameter", "aws-parameterstore", "pokedex-credentials", "best-pokemon", foreign))
		waitAWSPushReady(t, ns, "to-foreign-parameter", corev1.ConditionFalse, pushsecret.ReasonRemoteNotManaged)
		if p := awsParameter(t, foreign); p == nil || aws.ToString(p.Value) != theirs || p.Version != 1 {
			t.Fatal("the foreign parameter was written")
		}
	})

	t.Run("deletionPolicy Delete deletes only what was pushed", func(t *testing.T) {
		for _, name := range []string{"pushsecret-example-without-metadata", "to-foreign-parameter", "pushsecret-example"} {
			deleteAWSPushSecret(t, ns, name)
		}
		for _, name := range []string{remote, plain} {
			if awsParameter(t, name) != nil {
				t.Fatalf("%s still exists", name)
			}
		}
		if p := awsParameter(t, foreign); p == nil || aws.ToString(p.Value) != theirs {
			t.Fatal("the foreign parameter was deleted or written")
		}
	})
	assertAWSPushNoLeak(t, ns, "pushsecret-example", "pushsecret-example-without-metadata", "to-foreign-parameter")
}

// Two entries of one PushSecret push two properties of one Secrets Manager
// secret, which an ExternalSecret on the same store reads back at once (a
// push invalidates the cached value); an entry removed from data deletes
// only its property; deleting the PushSecret deletes the last one, and
// with it the secret, at once under the store's
// secretsManager.forceDeleteWithoutRecovery.
func TestPushAWSPropertiesOfOneSecret(t *testing.T) {
	ns := env.Namespace(t)
	remote := "kf-push-props-" + ns
	user, pw1, pw2 := "admin-"+canary, "pw1-"+canary, "pw2-"+canary
	env.Apply(t, ns, awsStore("store", awsRegion, newAccessKeyID(), "      secretsManager: {forceDeleteWithoutRecovery: true}\n"))
	env.Apply(t, ns, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  user: %s\n  password: %s\n", user, pw1))
	props := func(entries ...string) string {
		var b strings.Builder
		b.WriteString(`apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: props
spec:
  refreshInterval: 1h
  deletionPolicy: Delete
  secretStoreRefs: [{name: store, kind: SecretStore}]
  selector: {secret: {name: db}}
  data:
`)
		for _, e := range entries {
			fmt.Fprintf(&b, "    - match: {secretKey: %[1]s, remoteRef: {remoteKey: %[2]s, property: %[1]s}}\n", e, remote)
		}
		return b.String()
	}
	env.Apply(t, ns, props("user", "password"))
	deleteAWSPushSecretsOnCleanup(t, ns, "props")
	remoteObject := func() map[string]string {
		out, err := adminSM(awsRegion).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(remote)})
		if err != nil {
			return nil
		}
		var m map[string]string
		if json.Unmarshal(out.SecretBinary, &m) != nil {
			return nil
		}
		return m
	}
	waitRemote := func(what string, want map[string]string) {
		t.Helper()
		testenv.Eventually(t, what, func(context.Context) (bool, string) {
			got := remoteObject()
			if len(got) != len(want) {
				return false, fmt.Sprintf("keys %v", keys(toBytes(got)))
			}
			for k, v := range want {
				if got[k] != v {
					return false, "property " + k + " differs"
				}
			}
			return true, ""
		})
	}

	waitAWSPushReady(t, ns, "props", corev1.ConditionTrue, pushsecret.ReasonSynced)
	waitRemote("both properties pushed", map[string]string{"user": user, "password": pw1})
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: reader
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: password, remoteRef: {key: %s, property: password}}]
`, remote))
	deleteOnCleanup(t, ns, "reader")
	env.WaitSecret(t, ns, "reader", testenv.HasData(map[string]string{"password": pw1}))

	updateAWSPushSource(t, ns, "db", map[string]string{"user": user, "password": pw2})
	waitRemote("the new password pushed, user kept", map[string]string{"user": user, "password": pw2})
	env.WaitSecret(t, ns, "reader", testenv.HasData(map[string]string{"password": pw2}))

	env.Apply(t, ns, props("password"))
	waitRemote("the removed entry's property deleted", map[string]string{"password": pw2})

	deleteAWSPushSecret(t, ns, "props")
	if smSecret(t, remote) != nil {
		t.Fatalf("%s still exists after its last property was deleted (forceDeleteWithoutRecovery)", remote)
	}
	assertAWSPushNoLeak(t, ns, "props")
	assertNoLeak(t, ns, "reader")
}

func toBytes(m map[string]string) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = []byte(v)
	}
	return out
}

// An IAM user that may read a secret but not write it: the push fails with
// ProviderForbidden naming the secret, and the remote keeps its value.
func TestPushAWSForbiddenWriteLeavesTheRemoteAsItWas(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	name := "push-guarded-" + ns
	keyID, secret := createIAMUser(t, "pusher-"+ns, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:DescribeSecret","secretsmanager:GetSecretValue"],"Resource":"*"}]}`)
	secretMustNotLeak(secret)
	sm := enforcingAdminSM()
	old := "old-" + canary
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(old),
		Tags: []smtypes.Tag{{Key: aws.String(provider.ManagedByKey), Value: aws.String(provider.ManagedByValue)}}}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, awsStoreWithSecret("store", forbiddenRegion, keyID, secret, ""))
	env.Apply(t, ns, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: src\nstringData:\n  k: new-%s\n", canary))
	env.Apply(t, ns, awsPushSecretYAML("guarded", "store", "src", "k", name))
	deleteAWSPushSecretsOnCleanup(t, ns, "guarded")

	ps := waitAWSPushReady(t, ns, "guarded", corev1.ConditionFalse, engine.ReasonForbidden)
	if msg := awsPushReadyCondition(ps).Message; !strings.Contains(msg, name) || !strings.Contains(msg, "PutSecretValue") {
		t.Errorf("the message does not name the secret %q and the refused PutSecretValue: %s", name, msg)
	}
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil || aws.ToString(out.SecretString) != old {
		t.Fatalf("the remote secret changed (%v)", err)
	}
	waitWarning(t, ns, "guarded", engine.ReasonForbidden)
	assertAWSPushNoLeak(t, ns, "guarded")
}

// --- helpers (prefixed: other providers' push tests live in this package) ---

// applyWithoutMetadata applies the PushSecret of an example file under
// another name, with its data[].metadata removed and pushing to remoteKey
// instead of the example's: the example as ESO pushes it without
// metadata, beside the example itself.
func applyWithoutMetadata(t *testing.T, ns, file, name, remoteKey string) {
	t.Helper()
	objs, err := manifest.Read(filepath.Join(env.Root, file))
	if err != nil || len(objs) != 1 || objs[0].GetKind() != "PushSecret" {
		t.Fatalf("reading %s: %d objects, %v; want one PushSecret", file, len(objs), err)
	}
	ps := objs[0]
	data, _, err := unstructured.NestedSlice(ps.Object, "spec", "data")
	if err != nil || len(data) == 0 {
		t.Fatalf("%s has no spec.data: %v", file, err)
	}
	for _, d := range data {
		entry, ok := d.(map[string]any)
		if !ok {
			t.Fatalf("%s: spec.data holds a %T", file, d)
		}
		delete(entry, "metadata")
		if err := unstructured.SetNestedField(entry, remoteKey, "match", "remoteRef", "remoteKey"); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if err := unstructured.SetNestedSlice(ps.Object, data, "spec", "data"); err != nil {
		t.Fatal(err)
	}
	ps.SetName(name)
	if err := manifest.Apply(context.Background(), env.Client, ns, []*unstructured.Unstructured{ps}); err != nil {
		t.Fatalf("applying %s without metadata: %v", file, err)
	}
}

// awsPushSecretYAML is a PushSecret (Replace, Delete) of one key.
func awsPushSecretYAML(name, store, source, key, remoteKey string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: %s
spec:
  refreshInterval: 1h
  updatePolicy: Replace
  deletionPolicy: Delete
  secretStoreRefs:
    - name: %s
      kind: SecretStore
  selector:
    secret:
      name: %s
  data:
    - match:
        secretKey: %s
        remoteRef:
          remoteKey: %s
`, name, store, source, key, remoteKey)
}

func waitAWSPushReady(t *testing.T, ns, name string, want corev1.ConditionStatus, reason string) *esv1alpha1.PushSecret {
	t.Helper()
	var ps esv1alpha1.PushSecret
	testenv.Eventually(t, fmt.Sprintf("PushSecret %s/%s Ready=%s %s", ns, name, want, reason), func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); err != nil {
			return false, err.Error()
		}
		c := awsPushReadyCondition(&ps)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == want && c.Reason == reason, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
	})
	return &ps
}

func awsPushReadyCondition(ps *esv1alpha1.PushSecret) *esv1alpha1.PushSecretStatusCondition {
	for i := range ps.Status.Conditions {
		if ps.Status.Conditions[i].Type == esv1alpha1.PushSecretReady {
			return &ps.Status.Conditions[i]
		}
	}
	return nil
}

func updateAWSPushSource(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	var s corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data, s.StringData = nil, data
	if err := env.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
}

// deleteAWSPushSecret deletes a PushSecret and waits until it is gone (its
// finalizer, under deletionPolicy Delete, waits for the remote deletion).
func deleteAWSPushSecret(t *testing.T, ns, name string) {
	t.Helper()
	ps := &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := client.IgnoreNotFound(env.Client.Delete(context.Background(), ps)); err != nil {
		t.Fatalf("deleting PushSecret %s/%s: %v", ns, name, err)
	}
	waitAWSPushSecretGone(t, ns, name)
}

func waitAWSPushSecretGone(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("PushSecret %s/%s gone", ns, name), func(ctx context.Context) (bool, string) {
		var ps esv1alpha1.PushSecret
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps)
		return apierrors.IsNotFound(err), fmt.Sprintf("still there (finalizers %v)", ps.Finalizers)
	})
}

// deleteAWSPushSecretsOnCleanup deletes PushSecrets when the test ends,
// dropping their finalizer, so a failed test leaves nothing behind that
// the next one trips over.
func deleteAWSPushSecretsOnCleanup(t *testing.T, ns string, names ...string) {
	t.Cleanup(func() {
		ctx := context.Background()
		for _, name := range names {
			var ps esv1alpha1.PushSecret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); err != nil {
				continue
			}
			if len(ps.Finalizers) > 0 {
				ps.Finalizers = nil
				_ = env.Client.Update(ctx, &ps)
			}
			if err := client.IgnoreNotFound(env.Client.Delete(ctx, &ps)); err != nil {
				t.Errorf("deleting PushSecret %s/%s: %v", ns, name, err)
			}
		}
	})
}

// smSecret describes a secret of the open moto; nil when it does not
// exist.
func smSecret(t *testing.T, name string) *secretsmanager.DescribeSecretOutput {
	t.Helper()
	d, err := adminSM(awsRegion).DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		return nil
	}
	return d
}

func smTags(tags []smtypes.Tag) map[string]string {
	m := map[string]string{}
	for _, tag := range tags {
		m[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	return m
}

func assertSMString(t *testing.T, name, want string) {
	t.Helper()
	out, err := adminSM(awsRegion).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil || aws.ToString(out.SecretString) != want || len(out.SecretBinary) > 0 {
		t.Fatalf("%s was written or deleted (%v)", name, err)
	}
}

// awsPushAdminSSM is a Parameter Store client of the open moto, as the
// account's administrator would use it.
func awsPushAdminSSM() *ssm.Client {
	return ssm.NewFromConfig(aws.Config{
		Region:      awsRegion,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAADMIN", "admin", ""),
	}, func(o *ssm.Options) { o.BaseEndpoint = aws.String(moto.Endpoint()) })
}

// awsParameter reads a parameter, decrypted; nil when it does not exist.
func awsParameter(t *testing.T, name string) *ssmtypes.Parameter {
	t.Helper()
	out, err := awsPushAdminSSM().GetParameter(context.Background(), &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil
	}
	return out.Parameter
}

func hasSSMTag(tags []ssmtypes.Tag, key, value string) bool {
	for _, tag := range tags {
		if aws.ToString(tag.Key) == key && aws.ToString(tag.Value) == value {
			return true
		}
	}
	return false
}

// assertAWSPushNoLeak fails when the canary, or a credential registered
// with secretMustNotLeak, appears in the operator's logs, or in the Events
// or the status of the PushSecrets named (while they exist).
func assertAWSPushNoLeak(t *testing.T, ns string, names ...string) {
	t.Helper()
	leaksMu.Lock()
	secrets := append([]string{canary}, leaks...)
	leaksMu.Unlock()
	ctx := context.Background()
	for _, s := range secrets {
		env.AssertNoLeak(t, s)
	}
	for _, name := range names {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			t.Fatalf("listing Events of %s/%s: %v", ns, name, err)
		}
		var status []byte
		var ps esv1alpha1.PushSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); err == nil {
			if status, err = json.Marshal(ps.Status); err != nil {
				t.Fatal(err)
			}
		}
		if len(evs) == 0 && status == nil {
			t.Errorf("neither Events nor a status of %s/%s to check", ns, name)
		}
		for _, s := range secrets {
			for _, ev := range evs {
				if strings.Contains(ev.Note, s) || strings.Contains(ev.Reason, s) {
					t.Fatalf("a secret value appeared in Event %s of %s/%s", ev.Reason, ns, name)
				}
			}
			if strings.Contains(string(status), s) {
				t.Fatalf("a secret value appeared in the status of %s/%s", ns, name)
			}
		}
	}
}
