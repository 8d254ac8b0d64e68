// Package azurekv is a test server that speaks the Azure Key Vault REST API
// and the Microsoft Entra ID endpoints, closely enough that the official Azure
// SDK for Go (azsecrets, azcertificates, azkeys and azidentity) works against
// it unchanged. No Key Vault emulator can be installed where keyferry's tests
// run, so this server reproduces the protocol the SDK relies on:
//
//   - Key Vault: get a secret, certificate or key (latest or a version), list
//     secrets, certificates and keys and their versions with nextLink paging,
//     tags, contentType and attributes as the SDK parses them, the
//     first-request 401 challenge (WWW-Authenticate: Bearer
//     authorization="<authority>/<tenant>", resource="https://vault.azure.net")
//     that the SDK's challenge policy needs, bearer-token checks, 403
//     Forbidden, 404 SecretNotFound/CertificateNotFound/KeyNotFound and 429
//     with Retry-After, with Key Vault's error bodies.
//   - Key Vault's writes, as a PushSecret makes them (write.go): Set Secret
//     (a new version each time), Update Secret (tags, contentType,
//     attributes), Import Key (RSA or EC JWK with its private part),
//     Import Certificate (PKCS#12 or PEM, with the certificate's managed
//     key and secret), Delete with soft-delete (409
//     ObjectIsDeletedButRecoverable until purged), Get Deleted and Purge,
//     each behind its own permission (403 ForbiddenByRbac naming the data
//     action), with Key Vault's limits (25 KB values, 15 tags).
//   - Entra ID: the OpenID discovery document and the v2.0 token endpoint as
//     MSAL requests them, issuing tokens for client secrets, client
//     certificates (the client_assertion JWT is verified against the
//     registered certificate) and federated client assertions (workload
//     identity: the assertion is verified against the JWKS of a trusted
//     issuer such as a Kubernetes API server, and its issuer, subject and
//     audience must match a federated credential of the app).
//   - Managed identity: the App Service style endpoint (IDENTITY_ENDPOINT,
//     IDENTITY_HEADER) that azidentity's ManagedIdentityCredential calls.
//   - Azure Container Registry's token service (registry.go):
//     /oauth2/exchange (an Entra ID token for Azure Resource Manager for a
//     refresh token) and /oauth2/token (a refresh token for an access token
//     of a scope), as ESO's ACRAccessToken generator calls them.
//
// Both servers are HTTPS (the SDK refuses to send tokens over plain HTTP);
// HTTPClient returns a client that trusts them. Clients must disable
// challenge resource verification (the vault's host is 127.0.0.1, not a
// *.vault.azure.net name) and point the authority host at AuthorityHost with
// instance discovery disabled.
//
// It is meant for tests only: it keeps everything in memory and every helper
// fails the test on error.
package azurekv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is a SHA-1 thumbprint by definition
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// DefaultTenantID is the tenant of a server created without one.
	DefaultTenantID = "6f1c2b9e-4d7a-4c1e-9a55-0d3b5e8f7a21"
	// VaultResource is the resource Key Vault names in its challenge and the
	// audience of the access tokens it accepts.
	VaultResource = "https://vault.azure.net"
	// TokenExchangeAudience is the audience Entra ID expects in a federated
	// client assertion (workload identity).
	TokenExchangeAudience = "api://AzureADTokenExchange"
	// DefaultPageSize is Key Vault's largest page.
	DefaultPageSize = 25
)

// Access is a set of Key Vault permissions of a principal.
type Access uint

// Permissions a principal may hold.
const (
	SecretsGet Access = 1 << iota
	SecretsList
	CertificatesGet
	CertificatesList
	KeysGet
	KeysList
	// SecretsSet allows Set Secret and Update Secret (the tags, contentType
	// and attributes of a version).
	SecretsSet
	// SecretsDelete allows Delete Secret and reading deleted secrets.
	SecretsDelete
	// KeysImport allows Import Key.
	KeysImport
	// KeysDelete allows Delete Key and reading deleted keys.
	KeysDelete
	// CertificatesImport allows Import Certificate.
	CertificatesImport
	// CertificatesDelete allows Delete Certificate and reading deleted
	// certificates.
	CertificatesDelete
	// Purge allows purging deleted secrets, keys and certificates.
	Purge

	// NoAccess authenticates but is denied everything (403).
	NoAccess Access = 0
	// ReadAll allows every read.
	ReadAll = SecretsGet | SecretsList | CertificatesGet | CertificatesList | KeysGet | KeysList
	// WriteAll allows every write a PushSecret makes (set, import, delete),
	// as the Key Vault Secrets, Crypto and Certificates Officer roles do,
	// but not purge.
	WriteAll = SecretsSet | SecretsDelete | KeysImport | KeysDelete | CertificatesImport | CertificatesDelete
)

// FederatedCredential trusts tokens of an external issuer for an app
// (Entra ID's "federated identity credential").
type FederatedCredential struct {
	Issuer   string
	Subject  string
	Audience string // empty means TokenExchangeAudience
}

// App is an app registration (service principal) in the server's tenant.
// It authenticates with any of the credentials it has.
type App struct {
	ClientID string
	// ObjectID defaults to a random identifier.
	ObjectID string
	// ClientSecret, when set, is accepted as client_secret.
	ClientSecret string
	// Certificate, when set, verifies client_assertion JWTs signed with its
	// private key (MSAL's client certificate flow).
	Certificate *x509.Certificate
	// Federated credentials accept client assertions issued by a trusted
	// issuer (see TrustIssuer).
	Federated []FederatedCredential
	Access    Access
}

// ManagedIdentity is an identity the managed identity endpoint hands out.
type ManagedIdentity struct {
	ClientID string
	ObjectID string
	// ResourceID such as /subscriptions/.../userAssignedIdentities/name.
	ResourceID string
	// SystemAssigned is returned when a request names no identity.
	SystemAssigned bool
	Access         Access
}

// Options configure a server.
type Options struct {
	// TenantID of the vault and of every app; DefaultTenantID when empty.
	TenantID string
	// PageSize of list responses (nextLink paging); DefaultPageSize when 0.
	PageSize int
	// VaultName appears in error messages; "keyferry-test" when empty.
	VaultName string
}

// Server is a running Key Vault + Entra ID test server.
type Server struct {
	tenant    string
	pageSize  int
	vaultName string

	vault *httptest.Server
	login *httptest.Server
	// registry answers for every container registry of AddRegistry
	// (registry.go).
	registry *httptest.Server

	mu          sync.Mutex
	objects     map[string]map[string][]*version     // collection -> name -> versions (oldest first)
	deleted     map[string]map[string]*deletedObject // collection -> name -> soft-deleted object
	apps        map[string]*App                      // by client ID
	identities  []*ManagedIdentity
	issuers     map[string]*jose.JSONWebKeySet
	miHeader    string
	signKey     *rsa.PrivateKey
	signKID     string
	throttles   []*throttle
	registries  map[string]map[string]RegistryRole // registry host -> client ID -> role
	regThrottle *throttle
	regReqs     map[string]int
	vaultReqs   map[string]int
	tokenReqs   int
	issued      int
	clock       time.Time
}

type version struct {
	id          string
	value       string            // secrets
	cer         []byte            // certificates
	jwk         map[string]any    // keys: the public JWK without kid
	contentType string            // secrets
	tags        map[string]string //
	enabled     bool
	managed     bool
	created     time.Time
	updated     time.Time
	notBefore   *time.Time
	expires     *time.Time
}

type throttle struct {
	pathPrefix string
	retryAfter time.Duration
	remaining  int
}

// Key Vault collections.
const (
	collSecrets      = "secrets"
	collCertificates = "certificates"
	collKeys         = "keys"
)

// New starts a server; it stops when the test ends.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := &Server{
		tenant:    opts.TenantID,
		pageSize:  opts.PageSize,
		vaultName: opts.VaultName,
		objects: map[string]map[string][]*version{
			collSecrets: {}, collCertificates: {}, collKeys: {},
		},
		deleted: map[string]map[string]*deletedObject{
			collSecrets: {}, collCertificates: {}, collKeys: {},
		},
		apps:       map[string]*App{},
		issuers:    map[string]*jose.JSONWebKeySet{},
		vaultReqs:  map[string]int{},
		registries: map[string]map[string]RegistryRole{},
		regReqs:    map[string]int{},
		miHeader:   randomHex(16),
		clock:      time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	if s.tenant == "" {
		s.tenant = DefaultTenantID
	}
	if s.pageSize <= 0 || s.pageSize > DefaultPageSize {
		s.pageSize = DefaultPageSize
	}
	if s.vaultName == "" {
		s.vaultName = "keyferry-test"
	}
	key, err := processSigningKey()
	if err != nil {
		tb.Fatalf("azurekv test server: generating the token signing key: %v", err)
	}
	s.signKey, s.signKID = key, "keyferry-test"
	s.vault = httptest.NewTLSServer(http.HandlerFunc(s.serveVault))
	s.login = httptest.NewTLSServer(http.HandlerFunc(s.serveLogin))
	s.registry = httptest.NewTLSServer(http.HandlerFunc(s.serveRegistry))
	tb.Cleanup(s.Close)
	return s
}

// Close stops the servers.
func (s *Server) Close() {
	s.vault.Close()
	s.login.Close()
	s.registry.Close()
}

// VaultURL is the vault's URL, like https://<name>.vault.azure.net.
func (s *Server) VaultURL() string { return s.vault.URL }

// AuthorityHost is the Entra ID authority host (with a trailing slash, as
// azcore's cloud configurations spell it).
func (s *Server) AuthorityHost() string { return s.login.URL + "/" }

// TenantID is the vault's tenant.
func (s *Server) TenantID() string { return s.tenant }

// TokenEndpoint is the v2.0 token endpoint of the tenant.
func (s *Server) TokenEndpoint() string {
	return s.login.URL + "/" + s.tenant + "/oauth2/v2.0/token"
}

// ManagedIdentityEndpoint is the App Service style managed identity endpoint
// (the value of IDENTITY_ENDPOINT).
func (s *Server) ManagedIdentityEndpoint() string { return s.login.URL + "/msi/token" }

// ManagedIdentityHeader is the secret the managed identity endpoint expects
// in X-IDENTITY-HEADER (the value of IDENTITY_HEADER).
func (s *Server) ManagedIdentityHeader() string { return s.miHeader }

// HTTPClient returns a client that trusts both servers.
func (s *Server) HTTPClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(s.vault.Certificate())
	pool.AddCert(s.login.Certificate())
	pool.AddCert(s.registry.Certificate())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pool
	return &http.Client{Transport: tr}
}

// AddApp registers an app (service principal) in the tenant; registering a
// client ID again replaces it.
func (s *Server) AddApp(app App) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := app
	if a.ObjectID == "" {
		a.ObjectID = newUUID()
	}
	a.Federated = append([]FederatedCredential(nil), app.Federated...)
	s.apps[a.ClientID] = &a
}

// SetAccess changes the permissions of an app or managed identity.
func (s *Server) SetAccess(clientID string, access Access) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[clientID]; ok {
		a.Access = access
	}
	for _, mi := range s.identities {
		if mi.ClientID == clientID {
			mi.Access = access
		}
	}
}

// AddManagedIdentity registers an identity the managed identity endpoint
// issues tokens for.
func (s *Server) AddManagedIdentity(mi ManagedIdentity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := mi
	if m.ObjectID == "" {
		m.ObjectID = newUUID()
	}
	s.identities = append(s.identities, &m)
}

// TrustIssuer makes the token endpoint accept client assertions issued by
// issuer and signed by one of keys (for apps with a matching federated
// credential).
func (s *Server) TrustIssuer(issuer string, keys jose.JSONWebKeySet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := keys
	s.issuers[issuer] = &k
}

// RotateSigningKey replaces the key that signs access tokens: every token
// issued so far is rejected by the vault from now on (401), as after a
// tenant-wide key rollover or a revoked session.
func (s *Server) RotateSigningKey(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rotateSigningKey(); err != nil {
		tb.Fatalf("azurekv test server: %v", err)
	}
}

// processSigningKey signs the tokens of every server of a test process
// until RotateSigningKey: MSAL keeps managed identity tokens in a
// process-wide cache, which must stay valid from one test's server to the
// next.
var processSigningKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

func (s *Server) rotateSigningKey() error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating token signing key: %w", err)
	}
	s.signKey, s.signKID = k, randomHex(8)
	return nil
}

// Throttle answers the next count authorized vault requests whose path
// starts with pathPrefix ("" for every path) with 429 Too Many Requests and
// Retry-After (whole seconds, as Key Vault sends it).
func (s *Server) Throttle(pathPrefix string, retryAfter time.Duration, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttles = append(s.throttles, &throttle{pathPrefix: pathPrefix, retryAfter: retryAfter, remaining: count})
}

// VaultRequests counts the vault requests (of any outcome, including the
// unauthenticated challenge requests) whose URL path is path; a trailing
// slash is ignored.
func (s *Server) VaultRequests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vaultReqs[strings.TrimSuffix(path, "/")]
}

// TotalVaultRequests counts every vault request.
func (s *Server) TotalVaultRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.vaultReqs {
		n += c
	}
	return n
}

// TokenRequests counts requests to the token and managed identity endpoints.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenReqs
}

// TokensIssued counts the access tokens issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// ObjectOption sets properties of a seeded version.
type ObjectOption func(*version)

// WithTags sets the version's tags.
func WithTags(tags map[string]string) ObjectOption {
	return func(v *version) {
		v.tags = map[string]string{}
		for k, val := range tags {
			v.tags[k] = val
		}
	}
}

// WithContentType sets a secret's contentType.
func WithContentType(ct string) ObjectOption { return func(v *version) { v.contentType = ct } }

// Disabled seeds a disabled version.
func Disabled() ObjectOption { return func(v *version) { v.enabled = false } }

// CreatedAt sets the version's creation time (by default each seeded version
// is a minute younger than the one before).
func CreatedAt(t time.Time) ObjectOption {
	return func(v *version) { v.created, v.updated = t.UTC(), t.UTC() }
}

// ExpiresAt sets the version's expiry attribute.
func ExpiresAt(t time.Time) ObjectOption {
	return func(v *version) { u := t.UTC(); v.expires = &u }
}

// SetSecret adds a version of a secret and returns its version ID.
func (s *Server) SetSecret(name, value string, opts ...ObjectOption) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.newVersion(opts)
	v.value = value
	s.add(collSecrets, name, v)
	return v.id
}

// SetSecretEnabled enables or disables one version of a secret.
func (s *Server) SetSecretEnabled(name, versionID string, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.objects[collSecrets][name] {
		if v.id == versionID {
			v.enabled = enabled
		}
	}
}

// SetCertificate adds a version of a certificate and returns its version ID.
// With a private key, Key Vault's companion objects are created too, as for
// an imported certificate: a managed secret of the same name and version
// holding the PEM private key and certificate, and a managed key holding the
// public key.
func (s *Server) SetCertificate(tb testing.TB, name string, cert *x509.Certificate, key crypto.PrivateKey, opts ...ObjectOption) string {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.newVersion(opts)
	v.cer = append([]byte(nil), cert.Raw...)
	s.add(collCertificates, name, v)
	if key == nil {
		return v.id
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("azurekv test server: encoding the private key of certificate %s: %v", name, err)
	}
	pemData := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	sv := *v
	sv.cer, sv.value, sv.contentType, sv.managed = nil, pemData, "application/x-pem-file", true
	s.add(collSecrets, name, &sv)
	jwk, err := publicJWK(cert.PublicKey)
	if err != nil {
		tb.Fatalf("azurekv test server: certificate %s: %v", name, err)
	}
	kv := *v
	kv.cer, kv.jwk, kv.managed = nil, jwk, true
	s.add(collKeys, name, &kv)
	return v.id
}

// SetKey adds a version of a key (its public part, which is all Key Vault
// returns) and returns its version ID.
func (s *Server) SetKey(tb testing.TB, name string, pub crypto.PublicKey, opts ...ObjectOption) string {
	tb.Helper()
	jwk, err := publicJWK(pub)
	if err != nil {
		tb.Fatalf("azurekv test server: key %s: %v", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.newVersion(opts)
	v.jwk = jwk
	s.add(collKeys, name, v)
	return v.id
}

func (s *Server) newVersion(opts []ObjectOption) *version {
	s.clock = s.clock.Add(time.Minute)
	v := &version{id: randomHex(16), enabled: true, created: s.clock, updated: s.clock}
	for _, o := range opts {
		o(v)
	}
	return v
}

func (s *Server) add(coll, name string, v *version) {
	s.objects[coll][name] = append(s.objects[coll][name], v)
}

// latest returns the newest enabled-or-not version (Key Vault's "current"
// version is the most recently created one).
func latest(vs []*version) *version {
	var l *version
	for _, v := range vs {
		if l == nil || !v.created.Before(l.created) {
			l = v
		}
	}
	return l
}

func sortedNames(m map[string][]*version) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func publicJWK(pub crypto.PublicKey) (map[string]any, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]any{
			"kty":     "RSA",
			"key_ops": []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"},
			"n":       b64(k.N.Bytes()),
			"e":       b64(big.NewInt(int64(k.E)).Bytes()),
		}, nil
	case *ecdsa.PublicKey:
		ecdh, err := k.ECDH()
		if err != nil {
			return nil, fmt.Errorf("unsupported EC key: %w", err)
		}
		raw := ecdh.Bytes() // 0x04 || X || Y
		size := (len(raw) - 1) / 2
		crv := map[elliptic.Curve]string{elliptic.P256(): "P-256", elliptic.P384(): "P-384", elliptic.P521(): "P-521"}[k.Curve]
		if crv == "" {
			return nil, fmt.Errorf("unsupported curve %s", k.Curve.Params().Name)
		}
		return map[string]any{
			"kty":     "EC",
			"key_ops": []string{"sign", "verify"},
			"crv":     crv,
			"x":       b64(raw[1 : 1+size]),
			"y":       b64(raw[1+size:]),
		}, nil
	default:
		return nil, fmt.Errorf("unsupported public key type %T", pub)
	}
}

func thumbprintSHA1(der []byte) []byte {
	h := sha1.Sum(der) //nolint:gosec // x5t is a SHA-1 thumbprint by definition
	return h[:]
}

func thumbprintSHA256(der []byte) []byte {
	h := sha256.Sum256(der)
	return h[:]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

func newUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
