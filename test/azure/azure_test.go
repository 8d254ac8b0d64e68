package azure

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

const synced = "SecretSynced"

// The post's example, applied as it is: the ClusterSecretStore signs in
// with the azure-credentials Secret and the regcred ExternalSecret turns
// the vault's docker-config-json into a kubernetes.io/dockerconfigjson
// Secret in jenkins.
func TestBlogExampleSyncsRegcredFromKeyVault(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("jenkins-pull:acr-" + canary))
	dockerConfig := `{"auths":{"zaldre.azurecr.io":{"username":"jenkins-pull","password":"acr-` + canary + `","auth":"` + auth + `"}}}`
	srv.SetSecret("docker-config-json", dockerConfig, kvserver.WithContentType("application/json"))
	before := router.RequestsTo("zaldre.vault.azure.net")

	env.Apply(t, "", exampleDir)
	env.WaitStoreReady(t, "", "azure-keyvault-cluster-store")
	es := env.WaitReady(t, "jenkins", "regcred", metav1.ConditionTrue, synced)
	s := env.WaitSecret(t, "jenkins", "regcred", testenv.HasData(map[string]string{corev1.DockerConfigJsonKey: dockerConfig}))
	if s.Type != corev1.SecretTypeDockerConfigJson {
		t.Errorf("Secret type = %s, want %s", s.Type, corev1.SecretTypeDockerConfigJson)
	}
	if ref := metav1.GetControllerOf(s); ref == nil || ref.UID != es.UID {
		t.Errorf("Secret is not controlled by the ExternalSecret (creationPolicy Owner): %v", s.OwnerReferences)
	}
	if router.RequestsTo("zaldre.vault.azure.net") == before {
		t.Errorf("no request went to the manifest's vault zaldre.vault.azure.net")
	}
	assertNoLeak(t, "jenkins", "regcred")
}

// The post's namespaced SecretStore reads its credentials in its own
// namespace and serves ExternalSecrets there.
func TestBlogNamespacedSecretStoreServesJenkins(t *testing.T) {
	value := "jenkins-admin-" + canary
	srv.SetSecret("jenkins-admin-password", value)
	env.Apply(t, "", exampleDir)
	env.WaitStoreReady(t, "jenkins", "jenkins-secretstore")
	env.Apply(t, "jenkins", `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: jenkins-admin
spec:
  refreshInterval: 1h
  secretStoreRef:
    name: jenkins-secretstore
    kind: SecretStore
  data:
    - secretKey: password
      remoteRef:
        key: jenkins-admin-password
`)
	env.WaitReady(t, "jenkins", "jenkins-admin", metav1.ConditionTrue, synced)
	env.WaitSecret(t, "jenkins", "jenkins-admin", testenv.HasData(map[string]string{"password": value}))
	if router.RequestsTo("zaldres-secret-vault.vault.azure.net") == 0 {
		t.Errorf("no request went to the manifest's vault zaldres-secret-vault.vault.azure.net")
	}
	assertNoLeak(t, "jenkins", "jenkins-admin")
}

// The post's WorkloadIdentity SecretStore has no serviceAccountRef: it
// uses the operator's own federated token (AZURE_FEDERATED_TOKEN_FILE, a
// real ServiceAccount token of keyferry-system/keyferry) and
// AZURE_CLIENT_ID.
func TestBlogWorkloadIdentityStoreUsesTheOperatorsIdentity(t *testing.T) {
	value := "my-namespace-config-" + canary
	srv.SetSecret("my-namespace-config", value)
	env.Apply(t, "", exampleDir)
	env.WaitStoreReady(t, "my-namespace", "azure-keyvault-ns-store")
	env.Apply(t, "my-namespace", `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app-config
spec:
  refreshInterval: 1h
  secretStoreRef:
    name: azure-keyvault-ns-store
  data:
    - secretKey: config
      remoteRef:
        key: my-namespace-config
`)
	env.WaitReady(t, "my-namespace", "app-config", metav1.ConditionTrue, synced)
	env.WaitSecret(t, "my-namespace", "app-config", testenv.HasData(map[string]string{"config": value}))
	assertNoLeak(t, "my-namespace", "app-config")
}

func TestServicePrincipalWithClientCertificate(t *testing.T) {
	ns := env.Namespace(t)
	cert, key := selfSigned(t, "keyferry-e2e-client")
	clientID := newClientID()
	srv.AddApp(kvserver.App{ClientID: clientID, Certificate: cert, Access: kvserver.ReadAll})
	name, value := "cert-auth-"+ns, "cert-auth-"+canary
	srv.SetSecret(name, value)

	env.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: sp-certificate
type: Opaque
stringData:
  client-id: %s
  client-certificate: |
%s
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: store
spec:
  provider:
    azurekv:
      tenantId: %q
      vaultUrl: %q
      authSecretRef:
        clientId: {name: sp-certificate, key: client-id}
        clientCertificate: {name: sp-certificate, key: client-certificate}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: value, remoteRef: {key: %s}}]
`, clientID, indent(pemBundle(t, cert, key), 4), tenantID, vaultURL, name))
	env.WaitStoreReady(t, ns, "store")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": value}))
	assertNoLeak(t, ns, "app")
}

// WorkloadIdentity with serviceAccountRef: the operator requests a token
// of that ServiceAccount (TokenRequest, audience
// api://AzureADTokenExchange) and Entra ID trusts it because it trusts the
// API server's issuer, as for an AKS cluster's OIDC issuer.
func TestWorkloadIdentityWithServiceAccountToken(t *testing.T) {
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	issuer := srv.TrustKubernetesIssuer(ctx, t, env.Cluster.Config)
	clientID := newClientID()
	srv.AddApp(kvserver.App{
		ClientID:  clientID,
		Federated: []kvserver.FederatedCredential{{Issuer: issuer, Subject: serviceAccountSubject(ns, "keyvault-reader")}},
		Access:    kvserver.ReadAll,
	})
	name, value := "wi-"+ns, "wi-"+canary
	srv.SetSecret(name, value)

	env.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: keyvault-reader
  annotations:
    %s: %s
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: store
spec:
  provider:
    azurekv:
      authType: WorkloadIdentity
      tenantId: %q
      vaultUrl: %q
      serviceAccountRef:
        name: keyvault-reader
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: value, remoteRef: {key: %s}}]
`, azurekv.AnnotationClientID, clientID, tenantID, vaultURL, name))
	env.WaitStoreReady(t, ns, "store")
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": value}))
	assertNoLeak(t, ns, "app")
}

func TestRemoteRefVersionSelectsAVersion(t *testing.T) {
	ns := env.Namespace(t)
	_, store := servicePrincipalStore(t, "store", kvserver.ReadAll)
	name := "versioned-" + ns
	v1 := srv.SetSecret(name, "v1-"+canary)
	srv.SetSecret(name, "v2-"+canary)
	env.Apply(t, ns, store+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data:
    - secretKey: pinned
      remoteRef: {key: %[1]s, version: %[2]s}
    - secretKey: current
      remoteRef: {key: %[1]s}
`, name, v1))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"pinned": "v1-" + canary, "current": "v2-" + canary}))
	assertNoLeak(t, ns, "app")
}

// cert/ is a certificate's DER bytes, secret/ of a certificate its PEM
// private key and certificate, key/ a key's public JSON Web Key (whose
// fields property selects).
func TestCertificatesAndKeys(t *testing.T) {
	ns := env.Namespace(t)
	_, store := servicePrincipalStore(t, "store", kvserver.ReadAll)
	cert, certKey := selfSigned(t, "app.example.com")
	certName := "tls-" + ns
	srv.SetCertificate(t, certName, cert, certKey)
	signing, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyName := "signing-" + ns
	srv.SetKey(t, keyName, &signing.PublicKey)

	env.Apply(t, ns, store+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data:
    - secretKey: tls.der
      remoteRef: {key: cert/%[1]s}
    - secretKey: tls.pem
      remoteRef: {key: secret/%[1]s}
    - secretKey: signing.jwk
      remoteRef: {key: key/%[2]s}
    - secretKey: signing.n
      remoteRef: {key: key/%[2]s, property: "n"}
`, certName, keyName))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	s := env.WaitSecret(t, ns, "app", func(s *corev1.Secret) (bool, string) { return len(s.Data) == 4, fmt.Sprintf("keys %v", keys(s.Data)) })

	if string(s.Data["tls.der"]) != string(cert.Raw) {
		t.Errorf("tls.der is not the certificate's DER bytes")
	}
	var blocks []string
	var pemCert *x509.Certificate
	for rest := s.Data["tls.pem"]; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		blocks = append(blocks, b.Type)
		if b.Type == "CERTIFICATE" {
			if pemCert, err = x509.ParseCertificate(b.Bytes); err != nil {
				t.Fatalf("tls.pem: %v", err)
			}
		}
	}
	if strings.Join(blocks, ",") != "PRIVATE KEY,CERTIFICATE" || pemCert == nil || !pemCert.Equal(cert) {
		t.Errorf("tls.pem holds PEM blocks %v, want the private key and the certificate", blocks)
	}
	var jwk struct {
		Kty, Kid, N, E string
	}
	if err := json.Unmarshal(s.Data["signing.jwk"], &jwk); err != nil {
		t.Fatalf("signing.jwk is not JSON: %v", err)
	}
	wantN := base64.RawURLEncoding.EncodeToString(signing.N.Bytes())
	if jwk.Kty != "RSA" || jwk.N != wantN || jwk.E != "AQAB" || !strings.Contains(jwk.Kid, "/keys/"+keyName+"/") {
		t.Errorf("signing.jwk = kty %q kid %q e %q (n matches: %t)", jwk.Kty, jwk.Kid, jwk.E, jwk.N == wantN)
	}
	if string(s.Data["signing.n"]) != wantN {
		t.Errorf("property n of the key is not its modulus")
	}
	assertNoLeak(t, ns, "app")
}

// dataFrom.find with tags returns every enabled secret carrying all the
// tags, keyed by name, across pages of the listing.
func TestDataFromFindByTags(t *testing.T) {
	ns := env.Namespace(t)
	_, store := servicePrincipalStore(t, "store", kvserver.ReadAll)
	prod := map[string]string{"team": ns, "env": "prod"}
	a, b := "find-a-"+ns, "find-b-"+ns
	srv.SetSecret(a, "a-"+canary, kvserver.WithTags(prod))
	srv.SetSecret(b, "b-"+canary, kvserver.WithTags(prod))
	srv.SetSecret("find-dev-"+ns, "dev-"+canary, kvserver.WithTags(map[string]string{"team": ns, "env": "dev"}))
	srv.SetSecret("find-disabled-"+ns, "off-"+canary, kvserver.WithTags(prod), kvserver.Disabled())
	srv.SetSecret("find-untagged-"+ns, "untagged-"+canary)

	env.Apply(t, ns, store+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  dataFrom:
    - find:
        tags:
          team: %s
          env: prod
`, ns))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{a: "a-" + canary, b: "b-" + canary}))
	assertNoLeak(t, ns, "app")
}

// A new version in the vault reaches the Secret on the next refresh, and at
// once through the force-sync annotation.
func TestRotatedSecretReachesTheCluster(t *testing.T) {
	ns := env.Namespace(t)
	_, store := servicePrincipalStore(t, "store", kvserver.ReadAll)
	periodic, manual := "rotating-"+ns, "rotating-manual-"+ns
	srv.SetSecret(periodic, "v1-"+canary)
	srv.SetSecret(manual, "v1-"+canary)
	env.Apply(t, ns, store+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: periodic
spec:
  refreshPolicy: Periodic
  refreshInterval: 1s
  secretStoreRef: {name: store}
  data: [{secretKey: value, remoteRef: {key: %s}}]
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: manual
spec:
  refreshInterval: 24h
  secretStoreRef: {name: store}
  data: [{secretKey: value, remoteRef: {key: %s}}]
`, periodic, manual))
	env.WaitSecret(t, ns, "periodic", testenv.HasData(map[string]string{"value": "v1-" + canary}))
	env.WaitSecret(t, ns, "manual", testenv.HasData(map[string]string{"value": "v1-" + canary}))

	// A new version, as `az keyvault secret set` or the portal's
	// "+ New Version" creates it.
	srv.SetSecret(periodic, "v2-"+canary)
	env.WaitSecret(t, ns, "periodic", testenv.HasData(map[string]string{"value": "v2-" + canary}))

	srv.SetSecret(manual, "v2-"+canary)
	env.ForceSync(t, ns, "manual")
	env.WaitSecret(t, ns, "manual", testenv.HasData(map[string]string{"value": "v2-" + canary}))
	env.WaitReady(t, ns, "manual", metav1.ConditionTrue, synced)
	assertNoLeak(t, ns, "periodic", "manual")
}

// A principal that loses its access gets ProviderForbidden on the next
// refresh; the Secret keeps the value it had, refresh after refresh.
func TestForbiddenPrincipalKeepsTheOldSecret(t *testing.T) {
	ns := env.Namespace(t)
	clientID, store := servicePrincipalStore(t, "store", kvserver.ReadAll)
	name := "forbidden-" + ns
	path := "/secrets/" + name
	srv.SetSecret(name, "old-"+canary)
	env.Apply(t, ns, store+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: app
spec:
  refreshInterval: 1s
  secretStoreRef: {name: store}
  data: [{secretKey: value, remoteRef: {key: %s}}]
`, name))
	env.WaitReady(t, ns, "app", metav1.ConditionTrue, synced)
	before := env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"value": "old-" + canary}))

	srv.SetAccess(clientID, kvserver.NoAccess)
	srv.SetSecret(name, "new-"+canary) // a version the principal may no longer read
	es := env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonForbidden)
	if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, name) {
		t.Errorf("the message does not name the secret %q: %s", name, msg)
	}
	// Two more refreshes are refused too, and still nothing is written.
	refused := srv.VaultRequests(path)
	testenv.Eventually(t, "two more refreshes", func(context.Context) (bool, string) {
		n := srv.VaultRequests(path)
		return n >= refused+2, fmt.Sprintf("%d requests for %s since the first refusal", n-refused, path)
	})
	env.WaitReady(t, ns, "app", metav1.ConditionFalse, engine.ReasonForbidden)
	after := env.GetSecret(t, ns, "app")
	if after.ResourceVersion != before.ResourceVersion || string(after.Data["value"]) != "old-"+canary {
		t.Fatalf("the Secret changed after forbidden fetches (resourceVersion %s → %s)", before.ResourceVersion, after.ResourceVersion)
	}
	testenv.Eventually(t, "a Warning Event ProviderForbidden", func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, "app")
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Type == corev1.EventTypeWarning && ev.Reason == engine.ReasonForbidden {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d Events, none a Warning %s", len(evs), engine.ReasonForbidden)
	})
	assertNoLeak(t, ns, "app")
}

// A throttled vault (429, Retry-After: 3) is asked again only when
// Retry-After has passed, once for all the ExternalSecrets that share the
// value, however many there are and however often they retry.
func TestThrottledVaultIsNotHammeredByManyExternalSecrets(t *testing.T) {
	const (
		users      = 20
		retryAfter = 3 * time.Second
	)
	ns := env.Namespace(t)
	_, store := servicePrincipalStore(t, "store", kvserver.ReadAll)
	warm, shared := "warm-"+ns, "shared-"+ns
	srv.SetSecret(warm, "warm-"+canary)
	srv.SetSecret(shared, "shared-"+canary)
	// Sign in and answer Key Vault's authentication challenge first, so
	// that every request counted below is an authorized one.
	env.Apply(t, ns, store+fmt.Sprintf(`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: warm
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: value, remoteRef: {key: %s}}]
`, warm))
	env.WaitReady(t, ns, "warm", metav1.ConditionTrue, synced)

	path := "/secrets/" + shared
	srv.Throttle(path, retryAfter, 1<<30)
	start := time.Now()
	var b strings.Builder
	names := make([]string, users)
	for i := range names {
		names[i] = fmt.Sprintf("app-%02d", i)
		fmt.Fprintf(&b, `---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  refreshInterval: 1h
  secretStoreRef: {name: store}
  data: [{secretKey: value, remoteRef: {key: %s}}]
`, names[i], shared)
	}
	env.Apply(t, ns, b.String())
	testenv.Eventually(t, fmt.Sprintf("all %d ExternalSecrets Ready=False (%s)", users, engine.ReasonThrottled), func(ctx context.Context) (bool, string) {
		var list esv1.ExternalSecretList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		throttled, other := 0, ""
		for i := range list.Items {
			es := &list.Items[i]
			if !strings.HasPrefix(es.Name, "app-") {
				continue
			}
			c := testenv.ReadyCondition(es)
			switch {
			case c != nil && c.Status == metav1.ConditionFalse && c.Reason == engine.ReasonThrottled:
				throttled++
			case c != nil:
				other = fmt.Sprintf("; %s is Ready=%s (%s): %s", es.Name, c.Status, c.Reason, c.Message)
			}
		}
		return throttled == users, fmt.Sprintf("%d of %d throttled%s", throttled, users, other)
	})
	elapsed := time.Since(start)

	// Each request is answered 429 and backs the store off for at least
	// Retry-After; requests for one value coalesce. So the vault sees at
	// most one request per Retry-After period, not one per ExternalSecret
	// (or per retry).
	n := srv.VaultRequests(path)
	allowed := 1 + int(elapsed/retryAfter)
	t.Logf("%d ExternalSecrets throttled after %s; the vault saw %d requests for %s (at most %d allowed)", users, elapsed.Round(time.Millisecond), n, path, allowed)
	if n == 0 {
		t.Fatalf("the vault saw no request for %s", path)
	}
	if n > allowed {
		t.Fatalf("the vault saw %d requests for %s; Retry-After %s allows at most %d", n, path, retryAfter, allowed)
	}
	if n >= users {
		t.Fatalf("the vault saw %d requests for %s: as many as the %d ExternalSecrets", n, path, users)
	}
	for _, name := range names {
		err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{})
		if !apierrors.IsNotFound(err) {
			t.Fatalf("Secret %s/%s exists (or cannot be read: %v) although its value was never fetched", ns, name, err)
		}
	}
	assertNoLeak(t, ns, append(names, "warm")...)
}
