package azurekv

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

const historyObjects = "array:\n  - |\n    objectName: my-secret\n    objectType: secret\n    objectVersionHistory: 2\n"

func classParams(kv ...string) map[string]string {
	p := map[string]string{"keyvaultName": "kv1", "objects": historyObjects}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(p, kv[i])
		} else {
			p[kv[i]] = kv[i+1]
		}
	}
	return p
}

func TestParseClassParams(t *testing.T) {
	objs := []SPCObject{{Name: "my-secret", Type: "secret", VersionHistory: 2}}
	tests := []struct {
		name    string
		params  map[string]string
		want    ClassParams
		wantErr string
	}{
		{name: "workload identity", params: classParams("clientID", "c", "tenantID", "t"), want: ClassParams{VaultName: "kv1", Cloud: esv1.AzureEnvironmentPublicCloud, ClientID: "c", TenantID: "t", Objects: objs}},
		{name: "tenantId is the older spelling", params: classParams("tenantId", "old"), want: ClassParams{VaultName: "kv1", Cloud: esv1.AzureEnvironmentPublicCloud, TenantID: "old", Objects: objs}},
		{name: "tenantID wins", params: classParams("tenantId", "old", "tenantID", "new"), want: ClassParams{VaultName: "kv1", Cloud: esv1.AzureEnvironmentPublicCloud, TenantID: "new", Objects: objs}},
		{name: "cloud", params: classParams("cloudName", "AzureChinaCloud"), want: ClassParams{VaultName: "kv1", Cloud: esv1.AzureEnvironmentChinaCloud, Objects: objs}},
		{name: "managed identity", params: classParams("useVMManagedIdentity", "true", "userAssignedIdentityID", "mi", "clientID", "ignored"), want: ClassParams{VaultName: "kv1", Cloud: esv1.AzureEnvironmentPublicCloud, ManagedIdentity: true, ClientID: "mi", Objects: objs}},
		{name: "pod identity off", params: classParams("usePodIdentity", "false"), want: ClassParams{VaultName: "kv1", Cloud: esv1.AzureEnvironmentPublicCloud, Objects: objs}},
		{name: "no vault", params: classParams("keyvaultName", ""), wantErr: "parameters.keyvaultName is required"},
		{name: "bad vault name", params: classParams("keyvaultName", "no_underscores"), wantErr: "is not a Key Vault name"},
		{name: "unknown cloud", params: classParams("cloudName", "Mars"), wantErr: "parameters.cloudName"},
		{name: "cloud file", params: classParams("cloudEnvFileName", "/etc/azure.json"), wantErr: "parameters.cloudEnvFileName is not supported"},
		{name: "pod identity", params: classParams("usePodIdentity", "true"), wantErr: "AAD pod identity is not supported"},
		{name: "bad boolean", params: classParams("useVMManagedIdentity", "yes please"), wantErr: "parameters.useVMManagedIdentity"},
		{name: "no objects", params: classParams("objects", ""), wantErr: "objects is empty"},
		{name: "bad objects", params: classParams("objects", "array: ["), wantErr: "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClassParams(tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseClassParams = %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClassParams: %v", err)
			}
			if got.VaultName != tt.want.VaultName || got.Cloud != tt.want.Cloud || got.TenantID != tt.want.TenantID ||
				got.ClientID != tt.want.ClientID || got.ManagedIdentity != tt.want.ManagedIdentity || len(got.Objects) != 1 || got.Objects[0] != tt.want.Objects[0] {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// ClassObjects lists every file with refs that the class client resolves:
// a file by its name, and its tls.crt and tls.key parts.
func TestClassObjects(t *testing.T) {
	objs, err := New().(*Provider).ClassObjects(classParams("objects", `array:
  - |
    objectName: my-secret
    objectType: secret
    objectVersionHistory: 2
  - |
    objectName: db-password
    objectType: secret
    objectAlias: db
    objectVersion: abc123
    objectEncoding: base64
  - objectName: web
    objectType: cert
`))
	if err != nil {
		t.Fatalf("ClassObjects: %v", err)
	}
	var files []string
	for _, o := range objs {
		files = append(files, o.File)
		if o.Ref != (provider.Ref{Key: o.File}) || o.CertRef != (provider.Ref{Key: o.File + "/tls.crt"}) || o.KeyRef != (provider.Ref{Key: o.File + "/tls.key"}) {
			t.Fatalf("object %+v", o)
		}
	}
	if got := strings.Join(files, ","); got != "db,my-secret/0,my-secret/1,web" {
		t.Fatalf("files %s", got)
	}
	if _, err := New().(*Provider).ClassObjects(classParams("keyvaultName", "")); err == nil {
		t.Fatalf("ClassObjects accepted a class without a vault")
	}
}

func classStore(ns, sa string, params map[string]string) provider.Store {
	return provider.Store{Kind: provider.ClassKind, Namespace: ns, Name: "spc",
		Class: &provider.Class{Provider: ClassName, Parameters: params, ServiceAccount: sa}}
}

func TestValidateClass(t *testing.T) {
	p := New()
	if err := p.ValidateSpec(classStore("ns", "sa", classParams())); err != nil {
		t.Fatalf("ValidateSpec: %v", err)
	}
	if err := p.ValidateSpec(classStore("ns", "sa", classParams("cloudName", "Mars"))); err == nil || !strings.Contains(err.Error(), "parameters.cloudName") {
		t.Fatalf("ValidateSpec = %v; want parameters.cloudName", err)
	}
	st := classStore("ns", "sa", classParams())
	st.Class.Provider = "gcp"
	if err := p.ValidateSpec(st); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Fatalf("ValidateSpec of a gcp class = %v; want ErrInvalidConfig", err)
	}
}

// A class with useVMManagedIdentity uses the operator's managed identity: a
// namespaced class is refused unless the policy grants it, as a SecretStore
// would be; workload identity with the SecretSync's ServiceAccount is not
// the operator's.
func TestClassOperatorIdentity(t *testing.T) {
	p := New()
	managed := classStore("team-a", "sa", classParams("useVMManagedIdentity", "true"))
	_, err := provider.Admit(p, provider.Options{Store: managed})
	if !errors.Is(err, provider.ErrOperatorIdentity) || !strings.Contains(err.Error(), "parameters.useVMManagedIdentity") || !strings.Contains(err.Error(), "--allow-ambient-identity=team-a/azure") {
		t.Fatalf("Admit(managed identity) = %v; want ErrOperatorIdentity naming parameters.useVMManagedIdentity", err)
	}
	granted := provider.Policy{AmbientIdentities: []provider.IdentityGrant{{Identity: provider.IdentityAzure, Namespace: "team-a"}}}
	if _, err := provider.Admit(p, provider.Options{Store: managed, Policy: granted}); err != nil {
		t.Fatalf("Admit(managed identity, granted) = %v", err)
	}
	if _, err := provider.Admit(p, provider.Options{Store: classStore("team-a", "sa", classParams("clientID", "c"))}); err != nil {
		t.Fatalf("Admit(workload identity) = %v", err)
	}
}

// The class client reads the files of a class through the ServiceAccount's
// workload identity: the versions of an objectVersionHistory object with one
// listing, a pinned version, an encoded value, and the tls.crt / tls.key
// parts of a certificate-backed secret.
func TestClassClientReadsFiles(t *testing.T) {
	srv := newServer(t)
	ns := newNamespace(t)
	issuer := srv.TrustKubernetesIssuer(testContext(t), t, kubeConfig)
	srv.AddApp(kvserver.App{ClientID: "uami-client-id", Access: kvserver.ReadAll, Federated: []kvserver.FederatedCredential{
		{Issuer: issuer, Subject: "system:serviceaccount:" + ns + ":reader"},
	}})
	createServiceAccount(t, ns, "reader", nil)
	srv.SetSecret("my-secret", "one-"+canary)
	srv.SetSecret("my-secret", "two-"+canary)
	pinned := srv.SetSecret("db-password", "aGVsbG8=")
	srv.SetSecret("db-password", "bm90IHRoaXMgb25l")
	cert, key := selfSigned(t, "web.example.com")
	srv.SetCertificate(t, "web", cert, key)

	p := providerFor(srv, nil)
	p.opts.VaultURL = func(string, esv1.AzureEnvironmentType) (string, error) { return srv.VaultURL(), nil }
	params := classParams("clientID", "uami-client-id", "tenantID", srv.TenantID(), "objects", `array:
  - |
    objectName: my-secret
    objectType: secret
    objectVersionHistory: 2
  - |
    objectName: db-password
    objectType: secret
    objectAlias: db
    objectVersion: `+pinned+`
    objectEncoding: base64
  - |
    objectName: web
    objectType: secret
    objectAlias: bundle
`)
	objs, err := p.ClassObjects(params)
	if err != nil {
		t.Fatalf("ClassObjects: %v", err)
	}
	refs := map[string]provider.Ref{}
	for _, o := range objs {
		refs[o.File], refs[o.File+" cert"], refs[o.File+" key"] = o.Ref, o.CertRef, o.KeyRef
	}
	c, err := p.NewClient(testContext(t), provider.Options{Store: classStore(ns, "reader", params), Namespace: ns, Kube: kube, Tokens: &tokenRequester{}})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	want := map[provider.Ref]string{refs["my-secret/0"]: "two-" + canary, refs["my-secret/1"]: "one-" + canary, refs["db"]: "hello"}
	vals, errs := c.(provider.BatchGetter).GetSecrets(testContext(t), append(slices.Collect(maps.Keys(want)), refs["bundle cert"], refs["bundle key"]))
	for r, err := range errs {
		noCanary(t, err)
		t.Fatalf("GetSecrets: %s: %v", r, err)
	}
	for r, v := range want {
		if string(vals[r].Data) != v {
			t.Errorf("%s differs", r) // never print values
		}
	}
	if !strings.HasPrefix(string(vals[refs["bundle cert"]].Data), "-----BEGIN CERTIFICATE-----") || !strings.HasPrefix(string(vals[refs["bundle key"]].Data), "-----BEGIN RSA PRIVATE KEY-----") {
		t.Errorf("the tls parts of the bundle are not a certificate and an RSA private key")
	}
	// Both versions of my-secret come from one listing.
	before := srv.VaultRequests("/secrets/my-secret/versions")
	if _, errs := c.(provider.BatchGetter).GetSecrets(testContext(t), []provider.Ref{refs["my-secret/0"], refs["my-secret/1"]}); len(errs) > 0 {
		t.Fatalf("GetSecrets: %v", errs)
	}
	if n := srv.VaultRequests("/secrets/my-secret/versions") - before; n != 1 {
		t.Errorf("%d version listings of my-secret, want 1", n)
	}
	_, err = c.GetSecret(testContext(t), provider.Ref{Key: "not-a-file"})
	wantErr(t, err, provider.ErrInvalidConfig)
	if _, ok := c.(provider.Lister); ok {
		t.Errorf("the class client lists: a SecretProviderClass lists its objects")
	}
}
