package generators

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/all"
	"github.com/keyferry/keyferry/internal/provider/gcpsm"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	"github.com/keyferry/keyferry/internal/testing/testserver/gcptokenserver"
)

const gcrServiceAccount = "gcr-puller@p1.iam.gserviceaccount.com"

// startGCP is start with the operator's gcpsm provider trusting the local
// token endpoint's certificate (the service account keys name it as their
// token_uri), and policy as its --allow-ambient-identity.
func startGCP(t *testing.T, ns string, tokens *gcptokenserver.Server, policy provider.Policy) *proc {
	t.Helper()
	reg := all.Registry(all.Options{Config: env.Cluster.Config})
	reg.Register(gcpsm.Name, gcpsm.NewWithTokenClient(tokens.Client()))
	return startWith(t, ns, reg, policy)
}

// setGCRSpec replaces the spec of GCRAccessToken ns/name.
func setGCRSpec(t *testing.T, ns, name, spec string) {
	t.Helper()
	g := &genv1alpha1.GCRAccessToken{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, g); err != nil {
		t.Fatal(err)
	}
	g.Spec = &apiextensionsv1.JSON{Raw: []byte(spec)}
	if err := env.Client.Update(context.Background(), g); err != nil {
		t.Fatalf("updating GCRAccessToken %s: %v", name, err)
	}
}

// assertGCRToken checks that Secret ns/name holds ESO's three keys with a
// token the endpoint granted after before, and returns the token.
func assertGCRToken(t *testing.T, tokens *gcptokenserver.Server, ns, name string, before time.Time) string {
	t.Helper()
	s := env.GetSecret(t, ns, name)
	if got := strings.Join(slices.Sorted(maps.Keys(s.Data)), ","); got != "expiry,password,username" {
		t.Fatalf("%s keys = %s, want ESO's expiry,password,username", name, got)
	}
	if u := string(s.Data["username"]); u != "oauth2accesstoken" {
		t.Fatalf("%s username = %q, want oauth2accesstoken", name, u)
	}
	granted := false
	for _, g := range tokens.Grants() {
		if g.Token == string(s.Data["password"]) {
			granted = g.Email == gcrServiceAccount && g.Scope == "https://www.googleapis.com/auth/cloud-platform"
		}
	}
	if !granted {
		t.Fatalf("%s password is not a token granted to %s for cloud-platform", name, gcrServiceAccount)
	}
	exp, err := strconv.ParseInt(string(s.Data["expiry"]), 10, 64)
	if err != nil {
		t.Fatalf("%s expiry is not Unix seconds", name)
	}
	if d := time.Unix(exp, 0).Sub(before); d < gcptokenserver.TokenLifetime-2*time.Minute || d > gcptokenserver.TokenLifetime+time.Minute {
		t.Fatalf("the token expires %s after the sync started, want about %s", d, gcptokenserver.TokenLifetime)
	}
	return string(s.Data["password"])
}

// TestESOGCRExampleProducesItsSecret applies ESO's GCRAccessToken example
// as it is: its auth names empty references (both options of the docs are
// filled with ""), so it is refused with InvalidGeneratorSpec and nothing
// is written, as in ESO. With the generator's auth pointed at a service
// account key of the namespace (the one adjustment, for this environment),
// its ExternalSecret gets ESO's three keys: a token the endpoint granted
// through the JWT-bearer grant for the key's service account. Neither the
// token nor the key appears in logs, Events or status.
func TestESOGCRExampleProducesItsSecret(t *testing.T) {
	tokens := gcptokenserver.Start(t)
	ns := env.Namespace(t)
	p := startGCP(t, ns, tokens, provider.Policy{})
	env.Apply(t, ns, "examples/generators/gcr.yaml")
	t.Cleanup(func() {
		_ = env.Client.DeleteAllOf(context.Background(), &esv1.ExternalSecret{}, client.InNamespace(ns))
	})

	es := env.WaitReady(t, ns, "gcr-token", metav1.ConditionFalse, engine.ReasonInvalidGeneratorSpec)
	t.Logf("as written: %s", testenv.ReadyCondition(es).Message)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "GCRAccessToken gcr-gen") || !strings.Contains(msg, "auth.secretRef.secretAccessKeySecretRef") {
		t.Fatalf("message %q does not name the generator's empty secretRef", msg)
	}
	waitEvent(t, ns, "gcr-token", engine.ReasonInvalidGeneratorSpec)
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "gcr-token"}, &corev1.Secret{}); err == nil {
		t.Fatal("a Secret was written for the refused ExternalSecret")
	}
	if n := tokens.Requests(); n != 0 {
		t.Fatalf("the token endpoint saw %d requests for a refused spec", n)
	}

	keyJSON, _ := tokens.NewKey(t, gcrServiceAccount)
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: gcp-sa
stringData:
  key.json: '`+string(keyJSON)+`'
`)
	setGCRSpec(t, ns, "gcr-gen", `{"projectID": "p1", "auth": {"secretRef": {"secretAccessKeySecretRef": {"name": "gcp-sa", "key": "key.json"}}}}`)
	before := time.Now()
	env.ForceSync(t, ns, "gcr-token")
	env.WaitReady(t, ns, "gcr-token", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	token := assertGCRToken(t, tokens, ns, "gcr-token", before)

	assertNoLeak(t, ns, token, p)
	assertNoLeak(t, ns, "PRIVATE KEY", p)
}

// TestNamespacedGCRAccessTokenNeverUsesTheOperatorsIdentity: a
// GCRAccessToken without auth would, in ESO, use the operator's application
// default credentials; here a namespaced one is refused exactly as a
// SecretStore of its namespace would be, and a key in another namespace is
// refused too. Neither reaches the token endpoint.
func TestNamespacedGCRAccessTokenNeverUsesTheOperatorsIdentity(t *testing.T) {
	tokens := gcptokenserver.Start(t)
	ns := env.Namespace(t)
	startGCP(t, ns, tokens, provider.Policy{})
	env.Apply(t, ns, `apiVersion: generators.external-secrets.io/v1alpha1
kind: GCRAccessToken
metadata:
  name: ambient
spec:
  projectID: p1
  auth: {}
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: GCRAccessToken
metadata:
  name: elsewhere
spec:
  projectID: p1
  auth:
    secretRef:
      secretAccessKeySecretRef: {name: gcp-sa, key: key.json, namespace: kube-system}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: gcr-ambient
spec:
  target: {name: gcr-ambient}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: GCRAccessToken, name: ambient}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: gcr-elsewhere
spec:
  target: {name: gcr-elsewhere}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: GCRAccessToken, name: elsewhere}
`)
	for _, c := range []struct{ es, reason, says string }{
		{"gcr-ambient", engine.ReasonOperatorIdentityNotAllowed, "GCRAccessToken ambient: spec.auth names neither secretRef nor workloadIdentity"},
		{"gcr-elsewhere", engine.ReasonInvalidGeneratorSpec, `namespace "kube-system"`},
	} {
		es := env.WaitReady(t, ns, c.es, metav1.ConditionFalse, c.reason)
		t.Logf("%s: %s", c.es, testenv.ReadyCondition(es).Message)
		if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, c.says) || strings.Contains(msg, "spec.provider.gcpsm") {
			t.Errorf("%s: message %q does not say %q in the generator's words", c.es, msg, c.says)
		}
		waitEvent(t, ns, c.es, c.reason)
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: c.es}, &corev1.Secret{}); err == nil {
			t.Errorf("%s: a Secret was written", c.es)
		}
	}
	if n := tokens.Requests(); n != 0 {
		t.Fatalf("the token endpoint saw %d requests", n)
	}
}

// TestClusterGeneratorOfKindGCRAccessToken: a ClusterGenerator's secretRef
// without a namespace resolves in the namespace of the ExternalSecret that
// uses it, as a ClusterSecretStore's would.
func TestClusterGeneratorOfKindGCRAccessToken(t *testing.T) {
	tokens := gcptokenserver.Start(t)
	ns := env.Namespace(t)
	name := "gcr-" + ns
	startGCP(t, ns, tokens, provider.Policy{})
	env.Apply(t, "", `apiVersion: generators.external-secrets.io/v1alpha1
kind: ClusterGenerator
metadata:
  name: `+name+`
spec:
  kind: GCRAccessToken
  generator:
    gcrAccessTokenSpec:
      projectID: p1
      auth:
        secretRef:
          secretAccessKeySecretRef: {name: gcp-sa, key: key.json}
`)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), clusterGen(name)) })
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: cluster-gcr
spec:
  target: {name: cluster-gcr}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: ClusterGenerator, name: `+name+`}
`)
	es := env.WaitReady(t, ns, "cluster-gcr", metav1.ConditionFalse, engine.ReasonInvalidGeneratorSpec)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, ns+"/gcp-sa") {
		t.Fatalf("message %q does not name the missing Secret in %s", msg, ns)
	}
	keyJSON, _ := tokens.NewKey(t, gcrServiceAccount)
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: gcp-sa
stringData:
  key.json: '`+string(keyJSON)+`'
`)
	before := time.Now()
	env.ForceSync(t, ns, "cluster-gcr")
	env.WaitReady(t, ns, "cluster-gcr", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	assertGCRToken(t, tokens, ns, "cluster-gcr", before)
}
