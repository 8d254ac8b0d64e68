package generators

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/all"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// The tenant, registry and service principal Secret of ESO's ACR example.
const (
	esoACRTenant   = "11111111-2222-3333-4444-111111111111"
	esoACRRegistry = "example.azurecr.io"
	acrCanary      = "acr-sp-secret-3f9d1c"
)

// startACR is startWith with the operator's azurekv provider pointed at
// the in-repo Azure server: Entra ID at its authority host, every
// *.azurecr.io registry at its registry token service (the request's URL
// and Host are the registry's), trusting its certificates.
func startACR(t *testing.T, ns string, srv *kvserver.Server, policy provider.Policy) *proc {
	t.Helper()
	reg := all.Registry(all.Options{Config: env.Cluster.Config})
	reg.Register(azurekv.Name, azurekv.NewWithOptions(azurekv.Options{
		Transport: srv.Router(), AuthorityHost: srv.AuthorityHost(),
		LookupEnv: func(string) (string, bool) { return "", false },
	}))
	return startWith(t, ns, reg, policy)
}

// acrServer is the in-repo Azure server with ESO's example registry, and
// the example's service principal (client ID sp-client, its secret in
// Secret az-secret of ns) holding AcrPush on it.
func acrServer(t *testing.T, ns string) *kvserver.Server {
	t.Helper()
	srv := kvserver.New(t, kvserver.Options{TenantID: esoACRTenant})
	srv.AddRegistry(esoACRRegistry)
	srv.AddApp(kvserver.App{ClientID: "sp-client", ClientSecret: acrCanary})
	srv.GrantRegistry(esoACRRegistry, "sp-client", kvserver.AcrPush)
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: az-secret
stringData:
  clientid: sp-client
  clientsecret: `+acrCanary+`
`)
	return srv
}

// TestESOACRExampleProducesItsSecret applies ESO's ACRAccessToken example
// as it is. Its generator sets all three auth methods; as in ESO the
// service principal is used. Its scope asks for an access token of
// repository foo. Its template consumes the generated username and
// password, so the Secret is the docker config it renders (keyferry keeps
// that rendered Secret as the record of the generated values).
func TestESOACRExampleProducesItsSecret(t *testing.T) {
	ns := env.Namespace(t)
	srv := acrServer(t, ns)
	p := startACR(t, ns, srv, provider.Policy{})
	env.Apply(t, ns, "examples/generators/acr.yaml")
	t.Cleanup(func() {
		_ = env.Client.DeleteAllOf(context.Background(), &esv1.ExternalSecret{}, client.InNamespace(ns))
	})

	env.WaitReady(t, ns, "azurecr-credentials", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	s := env.GetSecret(t, ns, "azurecr-credentials")
	if s.Type != corev1.SecretTypeDockerConfigJson {
		t.Fatalf("type = %s", s.Type)
	}
	if got := strings.Join(slices.Sorted(maps.Keys(s.Data)), ","); got != ".dockerconfigjson" {
		t.Fatalf("keys = %s, want the template's .dockerconfigjson", got)
	}
	var cfg struct {
		Auths map[string]struct{ Username, Password string } `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[".dockerconfigjson"], &cfg); err != nil {
		t.Fatalf(".dockerconfigjson is not JSON: %v", err)
	}
	a, ok := cfg.Auths["myregistry.azurecr.io"]
	if !ok || a.Username != "00000000-0000-0000-0000-000000000000" {
		t.Fatalf(".dockerconfigjson has no auth for myregistry.azurecr.io with ACR's token user (username %q)", a.Username)
	}
	password := a.Password
	tok, err := srv.VerifyRegistryToken(password)
	if err != nil {
		t.Fatalf("the password is not a token of the registry: %v", err)
	}
	if tok.Registry != esoACRRegistry || tok.ClientID != "sp-client" || tok.Refresh || !slices.Equal(tok.Access, []string{"repository:foo:pull,push"}) {
		t.Fatalf("token %+v, want the example's access token of repository:foo:pull,push for the service principal", tok)
	}
	if srv.RegistryRequests("/oauth2/exchange") != 1 || srv.RegistryRequests("/oauth2/token") != 1 {
		t.Fatalf("%d exchanges, %d token requests; want one of each", srv.RegistryRequests("/oauth2/exchange"), srv.RegistryRequests("/oauth2/token"))
	}
	assertNoLeak(t, ns, password, p)
	assertNoLeak(t, ns, acrCanary, p)
}

// TestNamespacedACRGeneratorNeverUsesTheOperatorsIdentity: managedIdentity,
// and workloadIdentity without serviceAccountRef, are the operator's own
// Azure identity; a namespaced ACRAccessToken is refused as a SecretStore
// of its namespace would be (as the ECR generator is). With a
// ServiceAccount of its namespace, workload identity works.
func TestNamespacedACRGeneratorNeverUsesTheOperatorsIdentity(t *testing.T) {
	ns := env.Namespace(t)
	srv := acrServer(t, ns)
	issuer := srv.TrustKubernetesIssuer(context.Background(), t, env.Cluster.Config)
	srv.AddApp(kvserver.App{ClientID: "wi-client", Federated: []kvserver.FederatedCredential{{Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":acr-pusher"}}})
	srv.GrantRegistry(esoACRRegistry, "wi-client", kvserver.AcrPull)
	p := startACR(t, ns, srv, provider.Policy{})
	env.Apply(t, ns, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: acr-pusher
  annotations:
    azure.workload.identity/client-id: wi-client
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: ACRAccessToken
metadata:
  name: kubelet
spec:
  tenantId: `+esoACRTenant+`
  registry: `+esoACRRegistry+`
  auth:
    managedIdentity:
      identityId: 11111111-2222-3333-4444-111111111111
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: ACRAccessToken
metadata:
  name: operator-wi
spec:
  tenantId: `+esoACRTenant+`
  registry: `+esoACRRegistry+`
  auth:
    workloadIdentity: {}
---
apiVersion: generators.external-secrets.io/v1alpha1
kind: ACRAccessToken
metadata:
  name: own-sa
spec:
  tenantId: `+esoACRTenant+`
  registry: `+esoACRRegistry+`
  auth:
    workloadIdentity:
      serviceAccountRef: {name: acr-pusher}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: acr-mi
spec:
  target: {name: acr-mi}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: ACRAccessToken, name: kubelet}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: acr-operator-wi
spec:
  target: {name: acr-operator-wi}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: ACRAccessToken, name: operator-wi}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: acr-own-sa
spec:
  target: {name: acr-own-sa}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: ACRAccessToken, name: own-sa}
`)
	t.Cleanup(func() {
		_ = env.Client.DeleteAllOf(context.Background(), &esv1.ExternalSecret{}, client.InNamespace(ns))
	})
	for _, c := range []struct{ es, says string }{
		{"acr-mi", "ACRAccessToken kubelet: spec.auth.managedIdentity is set, so keyferry would authenticate as its own pod's managed identity"},
		{"acr-operator-wi", "ACRAccessToken operator-wi: spec.auth.workloadIdentity has no serviceAccountRef"},
	} {
		es := env.WaitReady(t, ns, c.es, metav1.ConditionFalse, engine.ReasonOperatorIdentityNotAllowed)
		msg := testenv.ReadyCondition(es).Message
		if !strings.Contains(msg, c.says) || !strings.Contains(msg, "--allow-ambient-identity="+ns+"/azure") || strings.Contains(msg, "spec.provider.azurekv") {
			t.Errorf("%s: message %q does not say %q in the generator's words", c.es, msg, c.says)
		}
		waitEvent(t, ns, c.es, engine.ReasonOperatorIdentityNotAllowed)
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: c.es}, &corev1.Secret{}); err == nil {
			t.Errorf("%s: a Secret was written", c.es)
		}
	}
	env.WaitReady(t, ns, "acr-own-sa", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	password := secretValue(t, ns, "acr-own-sa", "password")
	if tok, err := srv.VerifyRegistryToken(password); err != nil || tok.ClientID != "wi-client" || !tok.Refresh {
		t.Fatalf("acr-own-sa: token %+v (%v), want a refresh token of the ServiceAccount's identity", tok, err)
	}
	if srv.TokensIssued() != 1 {
		t.Fatalf("Entra ID issued %d tokens, want 1 (the refused generators must not ask)", srv.TokensIssued())
	}
	assertNoLeak(t, ns, password, p)
}

// TestClusterGeneratorOfKindACRAccessToken: a ClusterGenerator is a
// cluster store used from the ExternalSecret's namespace: its service
// principal Secret without a namespace is read there, and ESO's two keys
// are written.
func TestClusterGeneratorOfKindACRAccessToken(t *testing.T) {
	ns := env.Namespace(t)
	name := "acr-" + ns
	srv := acrServer(t, ns)
	p := startACR(t, ns, srv, provider.Policy{})
	env.Apply(t, "", `apiVersion: generators.external-secrets.io/v1alpha1
kind: ClusterGenerator
metadata:
  name: `+name+`
spec:
  kind: ACRAccessToken
  generator:
    acrAccessTokenSpec:
      tenantId: `+esoACRTenant+`
      registry: `+esoACRRegistry+`
      auth:
        servicePrincipal:
          secretRef:
            clientId: {name: az-secret, key: clientid}
            clientSecret: {name: az-secret, key: clientsecret}
`)
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), clusterGen(name)) })
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: cluster-acr
spec:
  target: {name: cluster-acr}
  dataFrom:
  - sourceRef:
      generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: ClusterGenerator, name: `+name+`}
`)
	t.Cleanup(func() {
		_ = env.Client.DeleteAllOf(context.Background(), &esv1.ExternalSecret{}, client.InNamespace(ns))
	})
	env.WaitReady(t, ns, "cluster-acr", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	s := env.GetSecret(t, ns, "cluster-acr")
	if got := strings.Join(slices.Sorted(maps.Keys(s.Data)), ","); got != "password,username" {
		t.Fatalf("keys = %s, want ESO's password, username", got)
	}
	if tok, err := srv.VerifyRegistryToken(string(s.Data["password"])); err != nil || !tok.Refresh || tok.ClientID != "sp-client" {
		t.Fatalf("token %+v (%v), want a refresh token of the service principal (no scope)", tok, err)
	}
	assertNoLeak(t, ns, string(s.Data["password"]), p)
}

// TestACRTokenSurvivesOperatorRestart: ESO's example's token is not asked
// for again when the operator restarts and re-syncs the ExternalSecret:
// no new call reaches the registry, the Secret is not rewritten and its
// generation record is the same.
func TestACRTokenSurvivesOperatorRestart(t *testing.T) {
	ns := env.Namespace(t)
	srv := acrServer(t, ns)
	procs := []*proc{startACR(t, ns, srv, provider.Policy{})}
	env.Apply(t, ns, "examples/generators/acr.yaml")
	t.Cleanup(func() {
		_ = env.Client.DeleteAllOf(context.Background(), &esv1.ExternalSecret{}, client.InNamespace(ns))
	})
	es := env.WaitReady(t, ns, "azurecr-credentials", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
	synced := es.Status.SyncedResourceVersion
	s := env.GetSecret(t, ns, "azurecr-credentials")
	rv, record := s.ResourceVersion, s.Annotations[engine.AnnotationGenerated]
	if record == "" {
		t.Fatal("no generation record")
	}
	exchanges := srv.RegistryRequests("/oauth2/exchange")

	procs[0].stop(t)
	p := startACR(t, ns, srv, provider.Policy{})
	procs = append(procs, p)
	p.waitLogged(t, "the new operator's first look at azurecr-credentials", `"refresh decision"`, `"reason":"FirstLookSinceStart"`, `"namespace":"`+ns+`"`)
	patchES(t, ns, "azurecr-credentials", func(es *esv1.ExternalSecret) {
		es.Labels = map[string]string{"restart": "1"}
	})
	waitSyncedAt(t, ns, "azurecr-credentials", synced)
	s = env.GetSecret(t, ns, "azurecr-credentials")
	if s.ResourceVersion != rv || s.Annotations[engine.AnnotationGenerated] != record {
		t.Fatalf("the Secret was rewritten or regenerated across the restart (resourceVersion %s, was %s)", s.ResourceVersion, rv)
	}
	if n := srv.RegistryRequests("/oauth2/exchange"); n != exchanges {
		t.Fatalf("%d exchanges after the restart, want %d (no new token)", n, exchanges)
	}
	p.waitLogged(t, "the new operator kept the generated values", `"generators"`, `"reason":"GeneratedValuesKept"`, `"namespace":"`+ns+`"`)
	assertNoLeak(t, ns, acrCanary, procs...)
}
