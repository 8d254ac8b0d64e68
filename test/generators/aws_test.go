package generators

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/all"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	"github.com/keyferry/keyferry/internal/testing/testserver/motoserver"
)

// startAWS is start with the operator's aws provider pointed at moto for
// STS and ECR (what AWS_STS_ENDPOINT and AWS_ECR_ENDPOINT do in a
// deployment), and policy as its --allow-ambient-identity.
func startAWS(t *testing.T, ns string, moto *motoserver.Server, policy provider.Policy) *proc {
	t.Helper()
	reg := all.Registry(all.Options{Config: env.Cluster.Config})
	reg.Register(awsprovider.Name, &awsprovider.Provider{Endpoints: awsprovider.Endpoints{
		SecretsManager: moto.Endpoint(), SSM: moto.Endpoint(), STS: moto.Endpoint(), ECR: moto.Endpoint(),
	}})
	return startWith(t, ns, reg, policy)
}

// startWith is start with the providers of reg and the store policy.
func startWith(t *testing.T, ns string, reg *provider.Registry, policy provider.Policy) *proc {
	t.Helper()
	logs := &testenv.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	op, err := operator.New(ctx, env.Cluster.Config, operator.Options{
		Log: testenv.DebugLogger(logs), Namespace: ns, Registry: reg, StorePolicy: policy,
		StartupSpread: time.Second, SkipControllerNameValidation: true,
	})
	if err != nil {
		cancel()
		t.Fatalf("building the operator: %v", err)
	}
	p := &proc{logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- op.Manager.Start(ctx) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// waitEvent waits for a Warning Event with reason about ExternalSecret
// ns/name.
func waitEvent(t *testing.T, ns, name, reason string) {
	t.Helper()
	testenv.Eventually(t, "a Warning Event "+reason+" for "+name, func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Type == corev1.EventTypeWarning && ev.Reason == reason {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(evs))
	})
}

// TestESOAWSGeneratorExamplesProduceTheirSecrets applies ESO's
// STSSessionToken and ECRAuthorizationToken examples as they are, against
// moto: the STS one gets ESO's four keys; the ECR one, whose template
// consumes the generated keys and drops them, gets its docker config alone,
// which a re-sync keeps as it is; with mergePolicy Merge it also gets ESO's
// four keys.
func TestESOAWSGeneratorExamplesProduceTheirSecrets(t *testing.T) {
	moto := motoserver.Start(t)
	ns := env.Namespace(t)
	p := startAWS(t, ns, moto, provider.Policy{})
	for _, f := range []string{"aws-credentials", "sts", "ecr"} {
		env.Apply(t, ns, "examples/generators/"+f+".yaml")
	}
	t.Cleanup(func() {
		_ = env.Client.DeleteAllOf(context.Background(), &esv1.ExternalSecret{}, client.InNamespace(ns))
	})

	// STSSessionToken: static keys, role my-role, requestParameters.
	before := time.Now()
	env.WaitReady(t, ns, "sts-secret", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	sts := env.GetSecret(t, ns, "sts-secret")
	if got := strings.Join(slices.Sorted(maps.Keys(sts.Data)), ","); got != "access_key_id,expiration,secret_access_key,session_token" {
		t.Fatalf("sts-secret keys = %s, want ESO's access_key_id,expiration,secret_access_key,session_token", got)
	}
	exp, err := strconv.ParseInt(string(sts.Data["expiration"]), 10, 64)
	if err != nil {
		t.Fatalf("expiration is not Unix seconds")
	}
	// The example's sessionDuration: 900 reached STS (moto's session lasts it).
	if d := time.Unix(exp, 0).Sub(before); d < 880*time.Second || d > 920*time.Second {
		t.Fatalf("the session expires %s from now, want about the example's sessionDuration 900s", d)
	}

	// ECRAuthorizationToken as written: its template consumes the
	// generated values and drops them; with only generators feeding it,
	// the rendered Secret is the record of the token, kept as it is until
	// the refresh interval (a re-sync renders nothing anew).
	es := env.WaitReady(t, ns, "ecr-secret", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	ecr := env.GetSecret(t, ns, "ecr-secret")
	if got := strings.Join(slices.Sorted(maps.Keys(ecr.Data)), ","); got != ".dockerconfigjson" || ecr.Type != corev1.SecretTypeDockerConfigJson {
		t.Fatalf("ecr-secret: type %s, keys %s; want the example's docker config alone", ecr.Type, got)
	}
	if ecr.Annotations["expiresAt"] == "" {
		t.Fatalf("the template's expiresAt annotation is missing")
	}
	rec, err := engine.ParseGeneratedRecord(ecr.Annotations[engine.AnnotationGenerated])
	if err != nil || strings.Join(rec.Rendered, ",") != ".dockerconfigjson" {
		t.Fatalf("generation record %v (%v); want the rendered key recorded", rec, err)
	}
	synced := es.Status.SyncedResourceVersion
	patchES(t, ns, "ecr-secret", func(es *esv1.ExternalSecret) { es.Labels = map[string]string{"resync": "1"} })
	waitSyncedAt(t, ns, "ecr-secret", synced)
	if again := env.GetSecret(t, ns, "ecr-secret"); again.ResourceVersion != ecr.ResourceVersion {
		t.Fatal("a re-sync rewrote the Secret whose template consumed the token")
	}
	token := dockerPassword(t, ecr.Data[".dockerconfigjson"])

	// With mergePolicy Merge (a spec change: a new token) the generated
	// keys are kept beside the docker config too.
	patchES(t, ns, "ecr-secret", func(es *esv1.ExternalSecret) {
		es.Spec.Target.Template.MergePolicy = esv1.MergePolicyMerge
	})
	ecr = env.WaitSecret(t, ns, "ecr-secret", func(s *corev1.Secret) (bool, string) {
		return len(s.Data["password"]) > 0, "no generated keys yet"
	})
	for _, k := range []string{"username", "password", "proxy_endpoint", "expires_at", ".dockerconfigjson"} {
		if len(ecr.Data[k]) == 0 {
			t.Fatalf("ecr-secret has no %s", k)
		}
	}
	if ecr.Annotations["expiresAt"] != string(ecr.Data["expires_at"]) {
		t.Fatalf("the template's expiresAt annotation is not expires_at")
	}
	var cfg struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(ecr.Data[".dockerconfigjson"], &cfg); err != nil {
		t.Fatalf(".dockerconfigjson is not JSON: %v", err)
	}
	host := strings.TrimPrefix(string(ecr.Data["proxy_endpoint"]), "https://")
	a, ok := cfg.Auths[host]
	if !ok || !strings.HasSuffix(host, ".dkr.ecr.eu-west-1.amazonaws.com") {
		t.Fatalf(".dockerconfigjson has no auth for %s", host)
	}
	if a.Username != "AWS" || a.Password != string(ecr.Data["password"]) ||
		a.Auth != base64.StdEncoding.EncodeToString([]byte("AWS:"+string(ecr.Data["password"]))) {
		t.Fatal(".dockerconfigjson's credentials are not the generated ones")
	}

	for _, v := range []string{token, string(ecr.Data["password"]), string(sts.Data["session_token"]), string(sts.Data["secret_access_key"])} {
		assertNoLeak(t, ns, v, p)
	}
}

// TestNamespacedAWSGeneratorNeverUsesTheOperatorsIdentity: a generator
// without auth would use the operator's own AWS credentials; a namespaced
// generator is refused unless the operator's policy grants its namespace,
// exactly as a SecretStore there would be.
func TestNamespacedAWSGeneratorNeverUsesTheOperatorsIdentity(t *testing.T) {
	moto := motoserver.Start(t)
	ns := env.Namespace(t)
	startAWS(t, ns, moto, provider.Policy{})
	env.Apply(t, ns, `apiVersion: generators.external-secrets.io/v1alpha1
kind: STSSessionToken
metadata:
  name: ambient
spec:
  region: eu-west-1
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: ECRAuthorizationToken
metadata:
  name: ambient
spec:
  region: eu-west-1
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: STSSessionToken
metadata:
  name: elsewhere
spec:
  region: eu-west-1
  auth:
    secretRef:
      accessKeyIDSecretRef: {name: creds, key: id, namespace: kube-system}
      secretAccessKeySecretRef: {name: creds, key: secret, namespace: kube-system}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: sts-ambient
spec:
  target: {name: sts-ambient}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: STSSessionToken, name: ambient}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: ecr-ambient
spec:
  target: {name: ecr-ambient}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: ECRAuthorizationToken, name: ambient}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: sts-elsewhere
spec:
  target: {name: sts-elsewhere}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: STSSessionToken, name: elsewhere}
`)
	for _, c := range []struct{ es, reason, says string }{
		{"sts-ambient", engine.ReasonOperatorIdentityNotAllowed, "STSSessionToken ambient: spec.auth names neither secretRef nor jwt"},
		{"ecr-ambient", engine.ReasonOperatorIdentityNotAllowed, "--allow-ambient-identity=" + ns + "/aws"},
		{"sts-elsewhere", engine.ReasonInvalidGeneratorSpec, `namespace "kube-system"`},
	} {
		es := env.WaitReady(t, ns, c.es, metav1.ConditionFalse, c.reason)
		if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, c.says) || strings.Contains(msg, "spec.provider.aws") {
			t.Errorf("%s: message %q does not say %q in the generator's words", c.es, msg, c.says)
		}
		waitEvent(t, ns, c.es, c.reason)
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: c.es}, &corev1.Secret{}); err == nil {
			t.Errorf("%s: a Secret was written", c.es)
		}
	}
}

// TestAWSGeneratedTokenSurvivesOperatorRestart: the STS session of ESO's
// example is not asked for again when the operator restarts and re-syncs
// the ExternalSecret (the pattern of TestPasswordSurvivesOperatorRestart):
// the Secret is not rewritten and its generation record is the same.
func TestAWSGeneratedTokenSurvivesOperatorRestart(t *testing.T) {
	moto := motoserver.Start(t)
	ns := env.Namespace(t)
	procs := []*proc{startAWS(t, ns, moto, provider.Policy{})}
	env.Apply(t, ns, "examples/generators/aws-credentials.yaml")
	env.Apply(t, ns, "examples/generators/sts.yaml")
	es := env.WaitReady(t, ns, "sts-secret", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	synced := es.Status.SyncedResourceVersion
	s := env.GetSecret(t, ns, "sts-secret")
	rv, record := s.ResourceVersion, s.Annotations[engine.AnnotationGenerated]
	if record == "" {
		t.Fatal("no generation record")
	}

	procs[0].stop(t)
	p := startAWS(t, ns, moto, provider.Policy{})
	procs = append(procs, p)
	p.waitLogged(t, "the new operator's first look at sts-secret", `"refresh decision"`, `"reason":"FirstLookSinceStart"`, `"namespace":"`+ns+`"`)
	patchES(t, ns, "sts-secret", func(es *esv1.ExternalSecret) {
		es.Labels = map[string]string{"restart": "1"}
	})
	waitSyncedAt(t, ns, "sts-secret", synced)
	s = env.GetSecret(t, ns, "sts-secret")
	if s.ResourceVersion != rv || s.Annotations[engine.AnnotationGenerated] != record {
		t.Fatalf("the Secret was rewritten or regenerated across the restart (resourceVersion %s, was %s)", s.ResourceVersion, rv)
	}
	p.waitLogged(t, "the new operator kept the generated values", `"generators"`, `"reason":"GeneratedValuesKept"`, `"namespace":"`+ns+`"`)
	assertNoLeak(t, ns, string(s.Data["session_token"]), procs...)
}

// TestClusterGeneratorOfKindSTSSessionToken: a ClusterGenerator is a
// cluster store used from the ExternalSecret's namespace, as a
// ClusterSecretStore is: its secretRef without a namespace resolves in
// the namespace of the ExternalSecret that uses it, so each namespace's
// ExternalSecret is answered with that namespace's keys.
func TestClusterGeneratorOfKindSTSSessionToken(t *testing.T) {
	moto := motoserver.Start(t)
	ns := env.Namespace(t)
	name := "sts-" + ns
	startAWS(t, ns, moto, provider.Policy{})
	env.Apply(t, "", `apiVersion: generators.external-secrets.io/v1alpha1
kind: ClusterGenerator
metadata:
  name: `+name+`
spec:
  kind: STSSessionToken
  generator:
    stsSessionTokenSpec:
      region: eu-west-1
      auth:
        secretRef:
          accessKeyIDSecretRef: {name: my-aws-creds, key: key-id}
          secretAccessKeySecretRef: {name: my-aws-creds, key: access-secret}
`)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), clusterGen(name)) })
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: cluster-sts
spec:
  target: {name: cluster-sts}
  dataFrom:
  - sourceRef:
      generatorRef: {kind: ClusterGenerator, name: `+name+`}
`)
	// The credential Secret does not exist yet in the ExternalSecret's
	// namespace: the reference resolves there, not anywhere else.
	es := env.WaitReady(t, ns, "cluster-sts", metav1.ConditionFalse, engine.ReasonInvalidGeneratorSpec)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "credential secret "+ns+"/my-aws-creds not found") {
		t.Fatalf("message %q does not name the missing Secret in %s", msg, ns)
	}
	env.Apply(t, ns, "examples/generators/aws-credentials.yaml")
	env.ForceSync(t, ns, "cluster-sts")
	env.WaitReady(t, ns, "cluster-sts", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	s := env.GetSecret(t, ns, "cluster-sts")
	if got := strings.Join(slices.Sorted(maps.Keys(s.Data)), ","); got != "access_key_id,expiration,secret_access_key,session_token" {
		t.Fatalf("cluster-sts keys = %s", got)
	}
}

// dockerPassword is the password of the only registry of a docker config.
func dockerPassword(t *testing.T, b []byte) string {
	t.Helper()
	var cfg struct {
		Auths map[string]struct{ Password string } `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil || len(cfg.Auths) != 1 {
		t.Fatalf(".dockerconfigjson is not a docker config of one registry (%v)", err)
	}
	for _, a := range cfg.Auths {
		return a.Password
	}
	return ""
}
