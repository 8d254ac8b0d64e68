package azurekv

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// spStore is the blog's ClusterSecretStore: a service principal whose
// client ID and secret are in a Secret of another namespace.
func spStore(srv *kvserver.Server, credNS string) provider.Store {
	return clusterStore(&esv1.AzureKVProvider{
		TenantID: ptr(srv.TenantID()),
		VaultURL: ptr(srv.VaultURL() + "/"),
		AuthSecretRef: &esv1.AzureKVAuth{
			ClientID:     &esv1.SecretKeySelector{Name: "azure-credentials", Key: "client-id", Namespace: ptr(credNS)},
			ClientSecret: &esv1.SecretKeySelector{Name: "azure-credentials", Key: "client-secret", Namespace: ptr(credNS)},
		},
	})
}

func TestServicePrincipalWithClientSecretReadsLatestAndVersions(t *testing.T) {
	srv := newServer(t)
	credNS := newNamespace(t)
	createSecret(t, credNS, "azure-credentials", map[string][]byte{
		"client-id": []byte("sp-reader"), "client-secret": []byte("s3cret-" + canary),
	})
	srv.AddApp(kvserver.App{ClientID: "sp-reader", ClientSecret: "s3cret-" + canary, Access: kvserver.ReadAll})
	v1 := srv.SetSecret("docker-config-json", `{"auths":{"old":{}}}`+canary)
	v2 := srv.SetSecret("docker-config-json", `{"auths":{"new":{}}}`+canary)

	p := providerFor(srv, nil)
	store := spStore(srv, credNS)
	if err := p.ValidateSpec(store); err != nil {
		t.Fatalf("ValidateSpec: %v", err)
	}
	c := mustClient(t, p, options(store, "jenkins", nil))

	if got := getValue(t, c, "docker-config-json", ""); string(got.Data) != `{"auths":{"new":{}}}`+canary || got.Version != v2 {
		t.Fatalf("latest: got version %q, want %q with the newest value", got.Version, v2)
	}
	if got := getValue(t, c, "secret/docker-config-json", v1); string(got.Data) != `{"auths":{"old":{}}}`+canary || got.Version != v1 {
		t.Fatalf("version %s: got version %q and another value", v1, got.Version)
	}
	if err := c.Validate(testContext(t)); err != nil {
		t.Fatalf("Validate: %v", err)
	}

	// The token is requested once and reused, also by a client built again
	// for the same store.
	for range 3 {
		getValue(t, c, "docker-config-json", "")
	}
	again := mustClient(t, p, options(store, "other-namespace", nil))
	getValue(t, again, "docker-config-json", "")
	if n := srv.TokenRequests(); n != 1 {
		t.Fatalf("%d token requests, want 1 (tokens must be cached and clients reused)", n)
	}
}

func TestServicePrincipalTenantFromAuthSecretRef(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	createSecret(t, ns, "sp", map[string][]byte{
		"ClientID": []byte("sp-tenant"), "ClientSecret": []byte(canary), "TenantID": []byte(srv.TenantID()),
	})
	srv.AddApp(kvserver.App{ClientID: "sp-tenant", ClientSecret: canary, Access: kvserver.ReadAll})
	srv.SetSecret("db-password", "pw-"+canary)
	store := namespacedStore(ns, &esv1.AzureKVProvider{
		VaultURL: ptr(srv.VaultURL()),
		AuthSecretRef: &esv1.AzureKVAuth{
			ClientID:     &esv1.SecretKeySelector{Name: "sp", Key: "ClientID"},
			TenantID:     &esv1.SecretKeySelector{Name: "sp", Key: "TenantID"},
			ClientSecret: &esv1.SecretKeySelector{Name: "sp", Key: "ClientSecret"},
		},
	})
	c := mustClient(t, providerFor(srv, nil), options(store, ns, nil))
	if got := getValue(t, c, "db-password", ""); string(got.Data) != "pw-"+canary {
		t.Fatal("wrong value for db-password")
	}
}

func TestServicePrincipalWithClientCertificate(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	cert, key := selfSigned(t, "keyferry-sp")
	otherCert, otherKey := selfSigned(t, "someone-else")
	createSecret(t, ns, "sp-cert", map[string][]byte{
		"client-id": []byte("sp-cert"), "tls.pem": pemBundle(t, cert, key), "other.pem": pemBundle(t, otherCert, otherKey),
	})
	srv.AddApp(kvserver.App{ClientID: "sp-cert", Certificate: cert, Access: kvserver.ReadAll})
	srv.SetSecret("api-key", "k-"+canary)
	store := func(certKey string) provider.Store {
		return namespacedStore(ns, &esv1.AzureKVProvider{
			AuthType: ptr(esv1.AzureServicePrincipal),
			TenantID: ptr(srv.TenantID()),
			VaultURL: ptr(srv.VaultURL()),
			AuthSecretRef: &esv1.AzureKVAuth{
				ClientID:          &esv1.SecretKeySelector{Name: "sp-cert", Key: "client-id"},
				ClientCertificate: &esv1.SecretKeySelector{Name: "sp-cert", Key: certKey},
			},
		})
	}
	p := providerFor(srv, nil)

	c := mustClient(t, p, options(store("tls.pem"), ns, nil))
	if got := getValue(t, c, "api-key", ""); string(got.Data) != "k-"+canary {
		t.Fatal("wrong value for api-key")
	}

	// A certificate the app does not have is refused by Entra ID.
	c = mustClient(t, p, options(store("other.pem"), ns, nil))
	_, err := c.GetSecret(testContext(t), provider.Ref{Key: "api-key"})
	wantErr(t, err, provider.ErrUnauthenticated)
}

func TestServicePrincipalRefusedCredentialsAreUnauthenticated(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	createSecret(t, ns, "azure-credentials", map[string][]byte{
		"client-id": []byte("sp-reader"), "client-secret": []byte("wrong-" + canary),
	})
	srv.AddApp(kvserver.App{ClientID: "sp-reader", ClientSecret: "right-" + canary, Access: kvserver.ReadAll})
	srv.SetSecret("db-password", "pw-"+canary)
	c := mustClient(t, providerFor(srv, nil), options(spStore(srv, ns), ns, nil))

	_, err := c.GetSecret(testContext(t), provider.Ref{Key: "db-password"})
	wantErr(t, err, provider.ErrUnauthenticated)
	err = c.Validate(testContext(t))
	wantErr(t, err, provider.ErrUnauthenticated)

	// An app unknown to the tenant.
	createSecret(t, ns, "unknown", map[string][]byte{"client-id": []byte("nobody"), "client-secret": []byte(canary)})
	store := spStore(srv, ns)
	store.Spec.Provider.AzureKV.AuthSecretRef.ClientID.Name = "unknown"
	store.Spec.Provider.AzureKV.AuthSecretRef.ClientSecret.Name = "unknown"
	c = mustClient(t, providerFor(srv, nil), options(store, ns, nil))
	_, err = c.GetSecret(testContext(t), provider.Ref{Key: "db-password"})
	wantErr(t, err, provider.ErrUnauthenticated)
}

func TestServicePrincipalMissingCredentialSecretIsInvalidConfig(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	_, err := providerFor(srv, nil).NewClient(testContext(t), options(spStore(srv, ns), ns, nil))
	wantErr(t, err, provider.ErrInvalidConfig)
}

// The blog's namespaced store: authType WorkloadIdentity with a
// ServiceAccount federated with the app.
func TestWorkloadIdentityExchangesServiceAccountToken(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	issuer := srv.TrustKubernetesIssuer(testContext(t), t, kubeConfig)
	srv.AddApp(kvserver.App{ClientID: "wi-app", Access: kvserver.ReadAll, Federated: []kvserver.FederatedCredential{
		{Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":kv-reader"},
	}})
	createServiceAccount(t, ns, "kv-reader", map[string]string{AnnotationClientID: "wi-app"})
	createServiceAccount(t, ns, "tenant-annotated", map[string]string{AnnotationClientID: "wi-app", AnnotationTenantID: srv.TenantID()})
	createServiceAccount(t, ns, "not-federated", map[string]string{AnnotationClientID: "wi-app"})
	createServiceAccount(t, ns, "no-client-id", nil)
	srv.SetSecret("db-password", "pw-"+canary)

	store := func(sa string, tenant *string) provider.Store {
		return namespacedStore(ns, &esv1.AzureKVProvider{
			AuthType:          ptr(esv1.AzureWorkloadIdentity),
			TenantID:          tenant,
			VaultURL:          ptr(srv.VaultURL()),
			ServiceAccountRef: &esv1.ServiceAccountSelector{Name: sa},
		})
	}
	p := providerFor(srv, nil)
	tokens := &tokenRequester{}

	c := mustClient(t, p, options(store("kv-reader", ptr(srv.TenantID())), ns, tokens))
	for range 3 {
		if got := getValue(t, c, "db-password", ""); string(got.Data) != "pw-"+canary {
			t.Fatal("wrong value for db-password")
		}
	}
	if n := tokens.calls.Load(); n != 1 {
		t.Fatalf("%d ServiceAccount token requests, want 1 (the Entra ID token must be cached)", n)
	}

	t.Run("tenant from the ServiceAccount annotation", func(t *testing.T) {
		srv.AddApp(kvserver.App{ClientID: "wi-app", Access: kvserver.ReadAll, Federated: []kvserver.FederatedCredential{
			{Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":kv-reader"},
			{Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":tenant-annotated"},
		}})
		c := mustClient(t, p, options(store("tenant-annotated", nil), ns, tokens))
		getValue(t, c, "db-password", "")
	})
	t.Run("a ServiceAccount without a federated credential is refused", func(t *testing.T) {
		c := mustClient(t, p, options(store("not-federated", ptr(srv.TenantID())), ns, tokens))
		_, err := c.GetSecret(testContext(t), provider.Ref{Key: "db-password"})
		wantErr(t, err, provider.ErrUnauthenticated)
	})
	t.Run("a ServiceAccount without client ID is invalid", func(t *testing.T) {
		_, err := p.NewClient(testContext(t), options(store("no-client-id", ptr(srv.TenantID())), ns, tokens))
		wantErr(t, err, provider.ErrInvalidConfig)
	})
	t.Run("a missing ServiceAccount is invalid", func(t *testing.T) {
		_, err := p.NewClient(testContext(t), options(store("missing", ptr(srv.TenantID())), ns, tokens))
		wantErr(t, err, provider.ErrInvalidConfig)
	})
	t.Run("a ServiceAccount deleted after the client was built", func(t *testing.T) {
		createServiceAccount(t, ns, "short-lived", map[string]string{AnnotationClientID: "wi-app"})
		c := mustClient(t, p, options(store("short-lived", ptr(srv.TenantID())), ns, tokens))
		if err := kube.Delete(testContext(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "short-lived"}}); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetSecret(testContext(t), provider.Ref{Key: "db-password"})
		wantErr(t, err, provider.ErrInvalidConfig)
	})
	t.Run("a client ID contradicting the annotation is invalid", func(t *testing.T) {
		createSecret(t, ns, "wi-ids", map[string][]byte{"client-id": []byte("another-app")})
		s := store("kv-reader", ptr(srv.TenantID()))
		s.Spec.Provider.AzureKV.AuthSecretRef = &esv1.AzureKVAuth{ClientID: &esv1.SecretKeySelector{Name: "wi-ids", Key: "client-id"}}
		_, err := p.NewClient(testContext(t), options(s, ns, tokens))
		wantErr(t, err, provider.ErrInvalidConfig)
	})
}

// Without serviceAccountRef, WorkloadIdentity uses the operator's own
// federated token, which the Azure workload identity webhook mounts and
// announces in the environment.
func TestWorkloadIdentityWithOperatorTokenFile(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	issuer := srv.TrustKubernetesIssuer(testContext(t), t, kubeConfig)
	createServiceAccount(t, ns, "keyferry", nil)
	srv.AddApp(kvserver.App{ClientID: "operator-identity", Access: kvserver.ReadAll, Federated: []kvserver.FederatedCredential{
		{Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":keyferry"},
	}})
	srv.SetSecret("db-password", "pw-"+canary)
	tok, _, err := (&tokenRequester{}).ServiceAccountToken(testContext(t), ns, "keyferry", []string{TokenExchangeAudience}, 0)
	if err != nil {
		t.Fatalf("requesting the operator's token: %v", err)
	}
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"AZURE_CLIENT_ID": "operator-identity", "AZURE_TENANT_ID": srv.TenantID(), "AZURE_FEDERATED_TOKEN_FILE": file}
	store := namespacedStore(ns, &esv1.AzureKVProvider{
		TenantID: ptr(srv.TenantID()),
		VaultURL: ptr(srv.VaultURL() + "/"),
		AuthType: ptr(esv1.AzureWorkloadIdentity),
	})

	c := mustClient(t, providerFor(srv, env), options(store, ns, nil))
	if got := getValue(t, c, "db-password", ""); string(got.Data) != "pw-"+canary {
		t.Fatal("wrong value for db-password")
	}

	_, err = providerFor(srv, map[string]string{}).NewClient(testContext(t), options(store, ns, nil))
	wantErr(t, err, provider.ErrInvalidConfig)
}

// Managed identity through the App Service style endpoint. azidentity reads
// IDENTITY_ENDPOINT and IDENTITY_HEADER from the process environment itself,
// so this test sets them (and cannot run in parallel).
func TestManagedIdentity(t *testing.T) {
	srv := newServer(t)
	t.Setenv("IDENTITY_ENDPOINT", srv.ManagedIdentityEndpoint())
	t.Setenv("IDENTITY_HEADER", srv.ManagedIdentityHeader())
	srv.AddManagedIdentity(kvserver.ManagedIdentity{ClientID: "system-mi", SystemAssigned: true, Access: kvserver.ReadAll})
	srv.AddManagedIdentity(kvserver.ManagedIdentity{ClientID: "user-mi", ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/user-mi", Access: kvserver.ReadAll})
	srv.AddManagedIdentity(kvserver.ManagedIdentity{ClientID: "powerless-mi", Access: kvserver.NoAccess})
	srv.SetSecret("db-password", "pw-"+canary)
	store := func(identityID *string) provider.Store {
		return clusterStore(&esv1.AzureKVProvider{
			AuthType:   ptr(esv1.AzureManagedIdentity),
			VaultURL:   ptr(srv.VaultURL()),
			IdentityID: identityID,
		})
	}
	p := providerFor(srv, nil)
	for _, id := range []*string{nil, ptr("user-mi"), ptr("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/user-mi")} {
		c := mustClient(t, p, options(store(id), "default", nil))
		if got := getValue(t, c, "db-password", ""); string(got.Data) != "pw-"+canary {
			t.Fatal("wrong value for db-password")
		}
	}

	c := mustClient(t, p, options(store(ptr("powerless-mi")), "default", nil))
	_, err := c.GetSecret(testContext(t), provider.Ref{Key: "db-password"})
	wantErr(t, err, provider.ErrForbidden)

	c = mustClient(t, p, options(store(ptr("not-assigned")), "default", nil))
	_, err = c.GetSecret(testContext(t), provider.Ref{Key: "db-password"})
	wantErr(t, err, provider.ErrUnauthenticated)
}
