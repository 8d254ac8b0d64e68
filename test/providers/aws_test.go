package providers

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	"github.com/keyferry/keyferry/internal/testing/testserver/motoserver"
)

const (
	// awsRegion is the region of ESO's example store; tests' stores use it
	// too. forbiddenRegion is served by the moto that enforces IAM.
	awsRegion       = "eu-central-1"
	forbiddenRegion = "eu-west-3"
	awsExampleDir   = "examples/aws"
	// awsExampleRole is the role of ESO's example store.
	awsExampleRole = "arn:aws:iam::123456789012:role/external-secrets"

	// enforcingSetupCalls is how many AWS calls the enforcing moto answers
	// before it checks IAM: setupEnforcingMoto's three.
	enforcingSetupCalls = 3
)

// enforcingAdmin are the credentials of an IAM user allowed everything on
// the enforcing moto.
var enforcingAdmin aws.Credentials

// ESO's example: the SecretStore with static keys and a role, and the
// ExternalSecret that reads two stages of production/api-key, applied as
// they are. The store's keys sign the AssumeRole; the role's temporary
// credentials sign the reads.
func TestAWSExampleReadsStagesThroughTheAssumedRole(t *testing.T) {
	ctx := context.Background()
	sm := adminSM(awsRegion)
	previous, current := "previous-"+canary, "current-"+canary
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("production/api-key"), SecretString: aws.String(previous)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("production/api-key"), SecretString: aws.String(current)}); err != nil {
		t.Fatal(err)
	}
	creds := exampleStringData(t, awsExampleDir, "00-awssm-secret.yaml")
	keyID := creds["access-key"]
	secretMustNotLeak(creds["secret-access-key"])

	ns := env.Namespace(t)
	env.Apply(t, ns, awsExampleDir)
	env.WaitStoreReady(t, ns, "aws-secretsmanager")
	env.WaitReady(t, ns, "versioned-api-key", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "versioned-api-key", testenv.HasData(map[string]string{"previous-api-key": previous, "current-api-key": current}))

	var assumed []awsRequest
	for _, r := range awsRoutes.requests(func(r awsRequest) bool { return r.Action == "AssumeRole" && r.AccessKey == keyID }) {
		if r.Form.Get("RoleArn") == awsExampleRole {
			assumed = append(assumed, r)
		}
	}
	if len(assumed) == 0 {
		t.Fatalf("no AssumeRole of %s signed by the example's access key %s", awsExampleRole, keyID)
	}
	reads := awsRoutes.requests(func(r awsRequest) bool {
		return (r.Action == "GetSecretValue" || r.Action == "BatchGetSecretValue") && r.mentions("production/api-key")
	})
	if len(reads) == 0 {
		t.Fatal("moto saw no read of production/api-key")
	}
	for _, r := range reads {
		if !strings.HasPrefix(r.AccessKey, "ASIA") {
			t.Errorf("%s of production/api-key was signed by %q, want the role's temporary credentials (ASIA...)", r.Action, r.AccessKey)
		}
	}
	assertNoLeak(t, ns, "versioned-api-key")
}

// remoteRef.version "uuid/<VersionId>" pins a version; no version reads
// AWSCURRENT.
func TestAWSVersionIDPinsAVersion(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	name := "pinned-" + ns
	sm := adminSM(awsRegion)
	v1, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v1-" + canary)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("v2-" + canary)}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, awsStore("store", awsRegion, newAccessKeyID(), "")+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data:
  - secretKey: pinned
    remoteRef: {key: %[1]s, version: "uuid/%[2]s"}
  - secretKey: current
    remoteRef: {key: %[1]s}
`, name, aws.ToString(v1.VersionId)))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"pinned": "v1-" + canary, "current": "v2-" + canary}))
	assertNoLeak(t, ns, "app")
}

// A new value in Secrets Manager reaches the Secret on the next refresh.
func TestAWSRotationReachesTheSecret(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	name := "rotating-" + ns
	sm := adminSM(awsRegion)
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v1-" + canary)}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, awsStore("store", awsRegion, newAccessKeyID(), "")+refreshingExternalSecret("app", "store", name))
	deleteOnCleanup(t, ns, "app")
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "v1-" + canary}))

	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("v2-" + canary)}); err != nil {
		t.Fatal(err)
	}
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "v2-" + canary}))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	assertNoLeak(t, ns, "app")
}

// A secret deleted from Secrets Manager is RemoteSecretNotFound, refresh
// after refresh, and the Secret keeps its value (deletionPolicy Retain).
func TestAWSDeletedSecretIsNotFoundAndTheSecretStays(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	name := "deleted-" + ns
	keyID := newAccessKeyID()
	sm := adminSM(awsRegion)
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("old-" + canary)}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, awsStore("store", awsRegion, keyID, "")+refreshingExternalSecret("app", "store", name))
	deleteOnCleanup(t, ns, "app")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	before := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "old-" + canary}))

	if _, err := sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonRemoteNotFound)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, name) {
		t.Errorf("the message does not name the secret %q: %s", name, msg)
	}
	assertUnchanged(t, before)
	awsRoutes.waitMoreReads(t, keyID, 2)
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonRemoteNotFound)
	assertUnchanged(t, before)
	waitWarning(t, ns, "app", engine.ReasonRemoteNotFound)
	assertNoLeak(t, ns, "app")
}

// An IAM user whose policy no longer allows reading gets ProviderForbidden
// (from the moto that enforces IAM); the Secret keeps its value.
func TestAWSForbiddenUserKeepsTheOldSecret(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	name := "guarded-" + ns
	user := "app-" + ns
	keyID, secret := createIAMUser(t, user, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:BatchGetSecretValue"],"Resource":"*"}]}`)
	secretMustNotLeak(secret)
	sm := enforcingAdminSM()
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("old-" + canary)}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, awsStoreWithSecret("store", forbiddenRegion, keyID, secret, "")+refreshingExternalSecret("app", "store", name))
	deleteOnCleanup(t, ns, "app")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	before := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "old-" + canary}))

	// The policy now allows nothing, and a new value is written that the
	// user may no longer read.
	iamCall(t, enforcingMoto, enforcingAdmin, url.Values{"Action": {"PutUserPolicy"}, "UserName": {user}, "PolicyName": {"inline"},
		"PolicyDocument": {`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"secretsmanager:*","Resource":"*"}]}`}})
	if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String("new-" + canary)}); err != nil {
		t.Fatal(err)
	}
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonForbidden)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, name) {
		t.Errorf("the message does not name the secret %q: %s", name, msg)
	}
	assertUnchanged(t, before)
	awsRoutes.waitMoreReads(t, keyID, 2)
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonForbidden)
	assertUnchanged(t, before)
	waitWarning(t, ns, "app", engine.ReasonForbidden)
	assertNoLeak(t, ns, "app")
}

// dataFrom.find with tags and a name regexp returns the matching secrets,
// keyed by name.
func TestAWSFindByTagsAndName(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	sm := adminSM(awsRegion)
	tagged := func(team, env string) []smtypes.Tag {
		return []smtypes.Tag{{Key: aws.String("team"), Value: aws.String(team)}, {Key: aws.String("env"), Value: aws.String(env)}}
	}
	secrets := []struct {
		name string
		tags []smtypes.Tag
	}{
		{"find-a-" + ns, tagged(ns, "prod")},
		{"find-b-" + ns, tagged(ns, "prod")},
		{"other-c-" + ns, tagged(ns, "prod")}, // the name does not match
		{"find-dev-" + ns, tagged(ns, "dev")},
		{"find-untagged-" + ns, nil},
	}
	for _, s := range secrets {
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(s.name), SecretString: aws.String(s.name + "-" + canary), Tags: s.tags}); err != nil {
			t.Fatal(err)
		}
	}
	env.Apply(t, ns, awsStore("store", awsRegion, newAccessKeyID(), "")+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  dataFrom:
  - find:
      name:
        regexp: "^find-"
      tags:
        team: %s
        env: prod
`, ns))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	a, b := "find-a-"+ns, "find-b-"+ns
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{a: a + "-" + canary, b: b + "-" + canary}))
	assertNoLeak(t, ns, "app")
}

// auth.jwt (IRSA): the operator requests a token of the ServiceAccount for
// sts.amazonaws.com and exchanges it for the role of its
// eks.amazonaws.com/role-arn annotation.
func TestAWSWebIdentityWithAServiceAccountToken(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	name := "irsa-" + ns
	role := "arn:aws:iam::123456789012:role/irsa-" + ns
	if _, err := adminSM(awsRegion).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("irsa-" + canary)}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: my-serviceaccount
  annotations:
    eks.amazonaws.com/role-arn: %s
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: store
spec:
  provider:
    aws:
      service: SecretsManager
      region: %s
      auth:
        jwt:
          serviceAccountRef:
            name: my-serviceaccount
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: value, remoteRef: {key: %s}}]
`, role, awsRegion, name))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "irsa-" + canary}))

	exchanges := awsRoutes.requests(func(r awsRequest) bool {
		return r.Action == "AssumeRoleWithWebIdentity" && r.Form.Get("RoleArn") == role
	})
	if len(exchanges) == 0 {
		t.Fatalf("no AssumeRoleWithWebIdentity for %s", role)
	}
	token := exchanges[0].Form.Get("WebIdentityToken")
	secretMustNotLeak(token)
	claims := jwtClaims(t, token)
	if sub := claims["sub"]; sub != "system:serviceaccount:"+ns+":my-serviceaccount" {
		t.Errorf("the web identity token's subject is %v, want the ServiceAccount", sub)
	}
	if aud := fmt.Sprint(claims["aud"]); !strings.Contains(aud, "sts.amazonaws.com") {
		t.Errorf("the web identity token's audience is %s, want sts.amazonaws.com", aud)
	}
	assertNoLeak(t, ns, "app")
}

// Ten ExternalSecrets, each reading 3 of 30 secrets from one store, refresh
// every 2s. Their first syncs use BatchGetSecretValue only; after all 30
// values rotate, the refresh window that brings every Secret up to date
// costs no more than one call per 20 distinct secrets plus a small constant,
// because batch calls are topped up with values due soon.
func TestAWSRefreshBatchesReadsAcrossExternalSecrets(t *testing.T) {
	const (
		secrets         = 30
		externalSecrets = 10
		perExternal     = secrets / externalSecrets
		// slack allows for a window split in two by the ExternalSecrets'
		// start times.
		slack = 2
	)
	ctx := context.Background()
	ns := env.Namespace(t)
	keyID := newAccessKeyID()
	sm := adminSM(awsRegion)
	names := make([]string, secrets)
	for i := range names {
		names[i] = fmt.Sprintf("batch-%s-%02d", ns, i)
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(names[i]), SecretString: aws.String(names[i] + "-" + canary)}); err != nil {
			t.Fatal(err)
		}
	}
	var b strings.Builder
	b.WriteString(awsStore("store", awsRegion, keyID, ""))
	esNames := make([]string, externalSecrets)
	for i := range esNames {
		esNames[i] = fmt.Sprintf("app-%02d", i)
		fmt.Fprintf(&b, "---\napiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata:\n  name: %s\nspec:\n  refreshInterval: 2s\n  secretStoreRef: {name: store}\n  data:\n", esNames[i])
		for j := range perExternal {
			fmt.Fprintf(&b, "  - secretKey: v%d\n    remoteRef: {key: %s}\n", j, names[i*perExternal+j])
		}
	}
	env.Apply(t, ns, b.String())
	waitAll := func(suffix string) {
		t.Helper()
		for i, name := range esNames {
			want := map[string]string{}
			for j := range perExternal {
				want[fmt.Sprintf("v%d", j)] = names[i*perExternal+j] + "-" + suffix
			}
			env.WaitSecret(t, ns, name, testenv.HasData(want))
		}
	}
	waitAll(canary)
	count := func(calls []awsRequest) map[string]int {
		out := map[string]int{}
		for _, c := range calls {
			out[c.Action]++
		}
		return out
	}
	mine := func(r awsRequest) bool { return r.AccessKey == keyID }
	first := count(awsRoutes.requests(mine))
	t.Logf("first syncs of %d ExternalSecrets × %d secrets: moto saw %v", externalSecrets, perExternal, first)
	if first["GetSecretValue"] > 0 || first["BatchGetSecretValue"] == 0 {
		t.Errorf("first syncs were not batched: %v", first)
	}

	// Rotate every value, then count the calls until every Secret has it.
	before := len(awsRoutes.requests(mine))
	for _, n := range names {
		if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(n), SecretString: aws.String(n + "-rotated-" + canary)}); err != nil {
			t.Fatal(err)
		}
	}
	waitAll("rotated-" + canary)
	window := awsRoutes.requests(mine)[before:]
	limit := int(math.Ceil(float64(secrets)/20)) + slack
	t.Logf("the refresh window after rotation: moto saw %v", count(window))
	if n := count(window)["GetSecretValue"]; n > 0 {
		t.Errorf("%d GetSecretValue calls: the refresh was not batched", n)
	}
	if len(window) > limit {
		t.Errorf("moto saw %d calls for %d distinct secrets in one refresh window; at most ceil(%d/20)+%d = %d allowed", len(window), secrets, secrets, slack, limit)
	}
}

// --- AWS helpers ------------------------------------------------------------

// awsStore returns a credentials Secret and a Secrets Manager SecretStore
// named name that signs with keyID (moto accepts any key); extra is added
// under spec.provider.aws.
func awsStore(name, region, keyID, extra string) string {
	return awsStoreWithSecret(name, region, keyID, "secret-"+canary+"-"+strings.ToLower(keyID), extra)
}

func awsStoreWithSecret(name, region, keyID, secret, extra string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: %[1]s-credentials
stringData:
  access-key: %[2]s
  secret-access-key: %[3]s
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: %[1]s
spec:
  provider:
    aws:
      service: SecretsManager
      region: %[4]s
      auth:
        secretRef:
          accessKeyIDSecretRef: {name: %[1]s-credentials, key: access-key}
          secretAccessKeySecretRef: {name: %[1]s-credentials, key: secret-access-key}
%[5]s`, name, keyID, secret, region, extra)
}

// refreshingExternalSecret reads key into "value" every second.
func refreshingExternalSecret(name, store, key string) string {
	return fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  refreshInterval: 1s
  secretStoreRef: {name: %s}
  data: [{secretKey: value, remoteRef: {key: %s}}]
`, name, store, key)
}

// newAccessKeyID returns a fresh access key id, so the calls of one store
// can be told apart.
func newAccessKeyID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "AKIAKF" + strings.ToUpper(hex.EncodeToString(b))
}

// adminSM is a Secrets Manager client of the open moto, as the account's
// administrator would use it.
func adminSM(region string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIAADMIN", "admin", ""),
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(moto.Endpoint()) })
}

// enforcingAdminSM is a Secrets Manager client of the enforcing moto, in
// forbiddenRegion, signed by its administrator.
func enforcingAdminSM() *secretsmanager.Client {
	return secretsmanager.NewFromConfig(aws.Config{
		Region:      forbiddenRegion,
		Credentials: credentials.StaticCredentialsProvider{Value: enforcingAdmin},
	}, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(enforcingMoto.Endpoint()) })
}

// setupEnforcingMoto creates the administrator of the enforcing moto in
// its first enforcingSetupCalls calls, which moto does not check.
func setupEnforcingMoto(ctx context.Context) error {
	anyone := aws.Credentials{AccessKeyID: "AKIASETUP", SecretAccessKey: "setup"}
	if _, err := iamRequest(ctx, enforcingMoto, anyone, url.Values{"Action": {"CreateUser"}, "UserName": {"admin"}}); err != nil {
		return err
	}
	out, err := iamRequest(ctx, enforcingMoto, anyone, url.Values{"Action": {"CreateAccessKey"}, "UserName": {"admin"}})
	if err != nil {
		return err
	}
	key, err := accessKeyOf(out)
	if err != nil {
		return err
	}
	if _, err := iamRequest(ctx, enforcingMoto, anyone, url.Values{"Action": {"PutUserPolicy"}, "UserName": {"admin"}, "PolicyName": {"admin"},
		"PolicyDocument": {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`}}); err != nil {
		return err
	}
	enforcingAdmin = key
	return nil
}

// createIAMUser creates a user of the enforcing moto with an access key and
// an inline policy, and returns the key.
func createIAMUser(t *testing.T, name, policy string) (keyID, secret string) {
	t.Helper()
	iamCall(t, enforcingMoto, enforcingAdmin, url.Values{"Action": {"CreateUser"}, "UserName": {name}})
	key, err := accessKeyOf(iamCall(t, enforcingMoto, enforcingAdmin, url.Values{"Action": {"CreateAccessKey"}, "UserName": {name}}))
	if err != nil {
		t.Fatal(err)
	}
	iamCall(t, enforcingMoto, enforcingAdmin, url.Values{"Action": {"PutUserPolicy"}, "UserName": {name}, "PolicyName": {"inline"}, "PolicyDocument": {policy}})
	return key.AccessKeyID, key.SecretAccessKey
}

func accessKeyOf(createAccessKey []byte) (aws.Credentials, error) {
	var out struct {
		ID     string `xml:"CreateAccessKeyResult>AccessKey>AccessKeyId"`
		Secret string `xml:"CreateAccessKeyResult>AccessKey>SecretAccessKey"`
	}
	if err := xml.Unmarshal(createAccessKey, &out); err != nil || out.ID == "" {
		return aws.Credentials{}, fmt.Errorf("no access key in CreateAccessKey's answer (%v)", err)
	}
	return aws.Credentials{AccessKeyID: out.ID, SecretAccessKey: out.Secret}, nil
}

func iamCall(t *testing.T, s *motoserver.Server, creds aws.Credentials, form url.Values) []byte {
	t.Helper()
	out, err := iamRequest(context.Background(), s, creds, form)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// iamRequest sends a signed IAM query-protocol request (the repository
// pins no IAM client) and returns the answer's body.
func iamRequest(ctx context.Context, s *motoserver.Server, creds aws.Credentials, form url.Values) ([]byte, error) {
	form.Set("Version", "2010-05-08")
	body := form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint()+"/", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "iam", "us-east-1", time.Now()); err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("IAM %s: %w", form.Get("Action"), err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("IAM %s: HTTP %d: %s (%v)", form.Get("Action"), resp.StatusCode, out, err)
	}
	return out, nil
}

// exampleStringData returns the stringData of the one Secret in an example
// file.
func exampleStringData(t *testing.T, dir, file string) map[string]string {
	t.Helper()
	objs, err := manifest.Read(filepath.Join(env.Root, dir, file))
	if err != nil || len(objs) != 1 {
		t.Fatalf("reading %s/%s: %d objects, %v", dir, file, len(objs), err)
	}
	raw, _ := objs[0].Object["stringData"].(map[string]any)
	out := map[string]string{}
	for k, v := range raw {
		out[k], _ = v.(string)
	}
	return out
}

// jwtClaims returns the claims of a JWT without verifying it.
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("a token of %d parts is not a JWT", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decoding a JWT's claims: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("decoding a JWT's claims: %v", err)
	}
	return claims
}

// awsRouter is the aws provider's HTTP client. It sends each request to the
// moto that serves its region, as AWS's regional endpoints would —
// forbiddenRegion to the moto that enforces IAM, any other region to the
// open one — and records what it sends. Only moto is ever reached.
type awsRouter struct {
	openHost, enforcingHost string
	client                  *http.Client

	mu   sync.Mutex
	reqs []awsRequest
}

// awsRequest is one request the provider sent.
type awsRequest struct {
	// Action is the API operation: X-Amz-Target's for the JSON services,
	// the Action form field for STS.
	Action string
	// AccessKey and Region are the SigV4 signature's (empty for unsigned
	// requests such as AssumeRoleWithWebIdentity).
	AccessKey, Region string
	// Form is the body of a query-protocol request.
	Form url.Values
	// SecretIDs are the secrets a Secrets Manager request names.
	SecretIDs []string
}

func (r awsRequest) mentions(id string) bool {
	for _, s := range r.SecretIDs {
		if s == id {
			return true
		}
	}
	return false
}

func newAWSRouter(open, enforcing *motoserver.Server) *awsRouter {
	host := func(s *motoserver.Server) string {
		u, _ := url.Parse(s.Endpoint())
		return u.Host
	}
	return &awsRouter{openHost: host(open), enforcingHost: host(enforcing), client: &http.Client{}}
}

// Do implements aws.HTTPClient.
func (r *awsRouter) Do(req *http.Request) (*http.Response, error) {
	if req.URL.Host != r.openHost {
		return nil, fmt.Errorf("test router: %s is not moto", req.URL.Host)
	}
	rec := awsRequest{}
	rec.AccessKey, rec.Region = credentialScope(req.Header.Get("Authorization"))
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	if target := req.Header.Get("X-Amz-Target"); target != "" {
		rec.Action = target[strings.LastIndex(target, ".")+1:]
		var in struct {
			SecretID     string   `json:"SecretId"`
			SecretIDList []string `json:"SecretIdList"`
		}
		if json.Unmarshal(body, &in) == nil {
			rec.SecretIDs = append(in.SecretIDList, in.SecretID)
		}
	} else if form, err := url.ParseQuery(string(body)); err == nil {
		rec.Form, rec.Action = form, form.Get("Action")
	}
	r.mu.Lock()
	r.reqs = append(r.reqs, rec)
	r.mu.Unlock()
	if rec.Region == forbiddenRegion {
		// The signature covers the Host header: keep it.
		req = req.Clone(req.Context())
		req.Host = r.openHost
		req.URL.Host = r.enforcingHost
	}
	return r.client.Do(req)
}

// requests returns the recorded requests that match.
func (r *awsRouter) requests(match func(awsRequest) bool) []awsRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []awsRequest
	for _, q := range r.reqs {
		if match(q) {
			out = append(out, q)
		}
	}
	return out
}

// waitMoreReads waits until n more Secrets Manager reads signed by keyID
// have been sent.
func (r *awsRouter) waitMoreReads(t *testing.T, keyID string, n int) {
	t.Helper()
	reads := func() int {
		return len(r.requests(func(q awsRequest) bool {
			return q.AccessKey == keyID && (q.Action == "GetSecretValue" || q.Action == "BatchGetSecretValue")
		}))
	}
	start := reads()
	testenv.Eventually(t, fmt.Sprintf("%d more reads signed by %s", n, keyID), func(context.Context) (bool, string) {
		got := reads() - start
		return got >= n, fmt.Sprintf("%d more reads", got)
	})
}

// credentialScope returns the access key id and region of a SigV4
// Authorization header.
func credentialScope(auth string) (keyID, region string) {
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return "", ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) < 3 {
		return parts[0], ""
	}
	return parts[0], parts[2]
}
