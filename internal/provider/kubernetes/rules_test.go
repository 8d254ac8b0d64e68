package kubernetes

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

func ptr[T any](v T) *T { return &v }

func TestValidateSpec(t *testing.T) {
	token := &esv1.KubernetesAuth{Token: &esv1.TokenAuth{BearerToken: esv1.SecretKeySelector{Name: "t", Key: "token"}}}
	cert := &esv1.KubernetesAuth{Cert: &esv1.CertAuth{
		ClientCert: esv1.SecretKeySelector{Name: "c", Key: "tls.crt"},
		ClientKey:  esv1.SecretKeySelector{Name: "c", Key: "tls.key"},
	}}
	sa := &esv1.KubernetesAuth{ServiceAccount: &esv1.ServiceAccountSelector{Name: "reader"}}
	remote := esv1.KubernetesServer{URL: "https://cluster.example.com:6443"}
	tests := []struct {
		name    string
		kind    string
		spec    *esv1.KubernetesProvider
		wantErr string // empty: valid
	}{
		{"no kubernetes provider", esv1.SecretStoreKind, nil, "spec.provider.kubernetes is not set"},
		{"token auth", esv1.SecretStoreKind, &esv1.KubernetesProvider{Server: remote, Auth: token}, ""},
		{"cert auth", esv1.SecretStoreKind, &esv1.KubernetesProvider{Server: remote, Auth: cert}, ""},
		{"serviceAccount auth", esv1.SecretStoreKind, &esv1.KubernetesProvider{Server: remote, Auth: sa}, ""},
		{"auth with the default server", esv1.SecretStoreKind, &esv1.KubernetesProvider{Auth: sa}, ""},
		{"authRef", esv1.SecretStoreKind, &esv1.KubernetesProvider{AuthRef: &esv1.SecretKeySelector{Name: "kc", Key: "config"}}, ""},
		{"auth and authRef", esv1.SecretStoreKind, &esv1.KubernetesProvider{Auth: token, AuthRef: &esv1.SecretKeySelector{Name: "kc", Key: "config"}}, "either auth or authRef"},
		{"authRef without key", esv1.SecretStoreKind, &esv1.KubernetesProvider{AuthRef: &esv1.SecretKeySelector{Name: "kc"}}, "authRef.key is empty"},
		{"auth without a method", esv1.SecretStoreKind, &esv1.KubernetesProvider{Auth: &esv1.KubernetesAuth{}}, "exactly one"},
		{"auth with two methods", esv1.SecretStoreKind, &esv1.KubernetesProvider{Auth: &esv1.KubernetesAuth{Token: token.Token, ServiceAccount: sa.ServiceAccount}}, "exactly one"},
		{"token without name", esv1.SecretStoreKind, &esv1.KubernetesProvider{Auth: &esv1.KubernetesAuth{Token: &esv1.TokenAuth{BearerToken: esv1.SecretKeySelector{Key: "token"}}}}, "bearerToken.name is empty"},
		{"cert without key selector", esv1.SecretStoreKind, &esv1.KubernetesProvider{Auth: &esv1.KubernetesAuth{Cert: &esv1.CertAuth{ClientCert: cert.Cert.ClientCert}}}, "clientKey.name is empty"},
		{"serviceAccount without name", esv1.SecretStoreKind, &esv1.KubernetesProvider{Auth: &esv1.KubernetesAuth{ServiceAccount: &esv1.ServiceAccountSelector{}}}, "serviceAccount.name is empty"},
		{"plain http server", esv1.SecretStoreKind, &esv1.KubernetesProvider{Server: esv1.KubernetesServer{URL: "http://cluster.example.com"}, Auth: token}, "must use https"},
		{"invalid remoteNamespace", esv1.SecretStoreKind, &esv1.KubernetesProvider{Auth: token, RemoteNamespace: "Not_A_Namespace"}, "remoteNamespace"},
		{"caProvider namespace in a SecretStore", esv1.SecretStoreKind, &esv1.KubernetesProvider{Server: esv1.KubernetesServer{CAProvider: &esv1.CAProvider{Type: esv1.CAProviderTypeConfigMap, Name: "ca", Key: "ca.crt", Namespace: ptr("x")}}, Auth: token}, `spec.provider.kubernetes.server.caProvider.namespace "x": a SecretStore may only reference its own namespace`},
		{"caProvider without namespace in a ClusterSecretStore", esv1.ClusterSecretStoreKind, &esv1.KubernetesProvider{Server: esv1.KubernetesServer{CAProvider: &esv1.CAProvider{Type: esv1.CAProviderTypeConfigMap, Name: "ca", Key: "ca.crt"}}, Auth: token}, "must be set in a ClusterSecretStore"},
		{"own identity: SecretStore reads its own namespace", esv1.SecretStoreKind, &esv1.KubernetesProvider{RemoteNamespace: "apps"}, ""},
		{"own identity: SecretStore defaults to namespace default", esv1.SecretStoreKind, &esv1.KubernetesProvider{}, `not remoteNamespace "default"`},
		{"own identity: SecretStore may not read another namespace", esv1.SecretStoreKind, &esv1.KubernetesProvider{RemoteNamespace: "kube-system"}, `may read only its own namespace "apps"`},
		{"own identity: ClusterSecretStore reads any namespace", esv1.ClusterSecretStoreKind, &esv1.KubernetesProvider{RemoteNamespace: "kube-system"}, ""},
		{"own identity: kubernetes.default is this cluster", esv1.SecretStoreKind, &esv1.KubernetesProvider{Server: esv1.KubernetesServer{URL: "https://kubernetes.default.svc"}, RemoteNamespace: "apps"}, ""},
		{"own identity: another server needs auth", esv1.ClusterSecretStoreKind, &esv1.KubernetesProvider{Server: remote}, "needs auth or authRef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := provider.Store{Kind: tt.kind, Name: "s", Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Kubernetes: tt.spec}}}
			if tt.kind == esv1.SecretStoreKind {
				st.Namespace = "apps"
			}
			err := New(nil).ValidateSpec(st)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want an error containing %q, got %v", tt.wantErr, err)
			}
			if !errors.Is(err, provider.ErrInvalidConfig) {
				t.Fatalf("want ErrInvalidConfig, got %v", err)
			}
		})
	}
}

func TestServerURL(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"", "https://kubernetes.default", false},
		{"kubernetes.default", "https://kubernetes.default", false},
		{"10.0.0.1:6443", "https://10.0.0.1:6443", false},
		{"https://cluster.example.com", "https://cluster.example.com", false},
		{"http://cluster.example.com", "", true},
		{"https://", "", true},
		{"https://bad host", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := serverURL(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %s", u)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.String() != tt.want {
				t.Fatalf("got %s, want %s", u, tt.want)
			}
		})
	}
}

func TestCheckKubeconfig(t *testing.T) {
	good := func() *clientcmdapi.Config {
		return &clientcmdapi.Config{
			CurrentContext: "c",
			Contexts:       map[string]*clientcmdapi.Context{"c": {Cluster: "k", AuthInfo: "u"}},
			Clusters:       map[string]*clientcmdapi.Cluster{"k": {Server: "https://k.example.com", CertificateAuthorityData: []byte("pem")}},
			AuthInfos:      map[string]*clientcmdapi.AuthInfo{"u": {Token: "t"}},
		}
	}
	tests := []struct {
		name    string
		edit    func(*clientcmdapi.Config)
		wantErr string
	}{
		{"inline token", func(*clientcmdapi.Config) {}, ""},
		{"inline certificate", func(c *clientcmdapi.Config) {
			c.AuthInfos["u"] = &clientcmdapi.AuthInfo{ClientCertificateData: []byte("c"), ClientKeyData: []byte("k")}
		}, ""},
		{"no current context", func(c *clientcmdapi.Config) { c.CurrentContext = "" }, "no current-context"},
		{"unknown current context", func(c *clientcmdapi.Config) { c.CurrentContext = "x" }, `"x" is not defined`},
		{"unknown cluster", func(c *clientcmdapi.Config) { c.Contexts["c"].Cluster = "x" }, `cluster "x"`},
		{"unknown user", func(c *clientcmdapi.Config) { c.Contexts["c"].AuthInfo = "x" }, `user "x"`},
		{"no server", func(c *clientcmdapi.Config) { c.Clusters["k"].Server = "" }, "no server"},
		{"http server", func(c *clientcmdapi.Config) { c.Clusters["k"].Server = "http://k.example.com" }, "https://"},
		{"CA file", func(c *clientcmdapi.Config) { c.Clusters["k"].CertificateAuthority = "/etc/ca.crt" }, "certificate-authority from a file"},
		{"exec plugin", func(c *clientcmdapi.Config) { c.AuthInfos["u"].Exec = &clientcmdapi.ExecConfig{Command: "sh"} }, "exec credential plugin"},
		{"auth provider", func(c *clientcmdapi.Config) {
			c.AuthInfos["u"].AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc"}
		}, "auth-provider plugin"},
		{"token file", func(c *clientcmdapi.Config) {
			c.AuthInfos["u"].TokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
		}, "tokenFile"},
		{"certificate file", func(c *clientcmdapi.Config) { c.AuthInfos["u"].ClientCertificate = "/tls.crt" }, "from a file"},
		{"key file", func(c *clientcmdapi.Config) { c.AuthInfos["u"].ClientKey = "/tls.key" }, "from a file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.edit(c)
			err := checkKubeconfig(c)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("want accepted, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("want an error containing %q, got %v", tt.wantErr, err)
			}
		})
	}
}

func TestAPIError(t *testing.T) {
	secrets := schema.GroupResource{Resource: "secrets"}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name       string
		err        error
		want       error
		retryAfter time.Duration
	}{
		{"not found", apierrors.NewNotFound(secrets, "db"), provider.ErrNotFound, 0},
		{"forbidden", apierrors.NewForbidden(secrets, "db", errors.New("RBAC: denied")), provider.ErrForbidden, 0},
		{"unauthorized", apierrors.NewUnauthorized("Unauthorized"), provider.ErrUnauthenticated, 0},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 3), nil, 3 * time.Second},
		{"too many requests without a delay", apierrors.NewTooManyRequests("slow down", 0), nil, 0},
		{"service unavailable", apierrors.NewServiceUnavailable("down"), provider.ErrUnreachable, 0},
		{"connection refused", fmt.Errorf("Get %q: %w", "https://x", refused), provider.ErrUnreachable, 0},
		{"client timeout", &url.Error{Op: "Get", URL: "https://x", Err: timeoutErr{}}, provider.ErrUnreachable, 0},
		{"DNS", &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, provider.ErrUnreachable, 0},
		{"untrusted certificate", fmt.Errorf("Get: %w", x509.UnknownAuthorityError{}), provider.ErrInvalidConfig, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := apiError("getting secret", tt.err)
			if !errors.Is(got, tt.err) {
				t.Errorf("the original error is not kept in the chain: %v", got)
			}
			if !strings.Contains(got.Error(), "getting secret") {
				t.Errorf("message does not say what failed: %v", got)
			}
			if tt.want != nil {
				if !errors.Is(got, tt.want) {
					t.Fatalf("want %q, got %v", tt.want, got)
				}
				return
			}
			var th *provider.ThrottledError
			if !errors.As(got, &th) {
				t.Fatalf("want a ThrottledError, got %v", got)
			}
			if th.RetryAfter != tt.retryAfter {
				t.Fatalf("retry after: got %s, want %s", th.RetryAfter, tt.retryAfter)
			}
		})
	}
}

// timeoutErr is a net.Error that timed out, as http.Client reports its
// Timeout.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "Client.Timeout exceeded while awaiting headers" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestRenewAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		expires time.Time
		want    time.Time
	}{
		{"an hour-long token is renewed after 48 minutes", now.Add(time.Hour), now.Add(48 * time.Minute)},
		{"a ten-minute token after 8 minutes", now.Add(10 * time.Minute), now.Add(8 * time.Minute)},
		{"no expiry counts as the ten minutes requested", time.Time{}, now.Add(8 * time.Minute)},
		{"an expired token at once", now.Add(-time.Second), now.Add(-time.Second)},
		{"a token expiring now at once", now, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := renewAt(now, tt.expires); !got.Equal(tt.want) {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestJSONStrings(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string][]byte
		want   string
	}{
		{"empty", map[string][]byte{}, `{}`},
		{"sorted keys", map[string][]byte{"b": []byte("2"), "a": []byte("1")}, `{"a":"1","b":"2"}`},
		{"no HTML escaping", map[string][]byte{"h": []byte("<a&b>")}, `{"h":"<a&b>"}`},
		{"quotes and newlines", map[string][]byte{"q": []byte("\"x\"\n")}, `{"q":"\"x\"\n"}`},
		{"invalid UTF-8", map[string][]byte{"b": {0xff}}, `{"b":"\ufffd"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jsonStrings(tt.fields)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}
