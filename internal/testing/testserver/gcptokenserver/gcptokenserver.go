// Package gcptokenserver runs a local OAuth2 token endpoint that does what
// Google's (https://oauth2.googleapis.com/token) does for a service account
// key, for tests: the JWT-bearer grant of RFC 7523
// (grant_type urn:ietf:params:oauth:grant-type:jwt-bearer) with an RS256
// assertion whose signature is checked against the public key of the
// service account named by its iss claim, whose aud must be the endpoint's
// URL and whose scope must be set. It answers as Google does: a JSON
// access_token, expires_in and token_type Bearer, or an OAuth2 error
// ({"error": "invalid_grant", ...}) with HTTP 400.
//
// It serves HTTPS with a certificate for 127.0.0.1 that Client trusts; the
// service account keys it makes (NewKey) carry its URL as token_uri.
//
// It is test-only infrastructure: nothing outside _test.go files should
// import it.
package gcptokenserver

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	// GrantType is the JWT-bearer grant the endpoint accepts.
	GrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// TokenLifetime is the lifetime of the tokens it grants, as Google's.
	TokenLifetime = 3599 * time.Second
	// maxAssertionLifetime is the longest exp - iat Google accepts.
	maxAssertionLifetime = time.Hour
	// clockSkew is how far in the future an assertion's iat may be.
	clockSkew = time.Minute
)

// Grant is one access token the endpoint granted.
type Grant struct {
	// Email is the service account (the assertion's iss).
	Email string
	// Scope is the assertion's scope claim.
	Scope string
	// Token is the access token.
	Token string
	// Expiry is when the token expires.
	Expiry time.Time
}

// Refusal is an answer the endpoint gives instead of a token.
type Refusal struct {
	Status int
	Body   string
}

// Server is a running token endpoint.
type Server struct {
	// URL is the token endpoint, the token_uri of the keys NewKey makes.
	URL string

	srv *httptest.Server

	mu      sync.Mutex
	keys    map[string]*rsa.PublicKey
	grants  []Grant
	refusal *Refusal
	tried   int
}

// Start starts a token endpoint and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{keys: map[string]*rsa.PublicKey{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", s.token)
	s.srv = httptest.NewUnstartedServer(mux)
	// A client that does not trust the certificate is a case tests make
	// on purpose; its handshake error is not worth a log line.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	s.URL = s.srv.URL + "/token"
	t.Cleanup(s.srv.Close)
	return s
}

// Client returns an HTTP client that trusts the endpoint's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// NewKey makes a service account key for email, as a key file Google
// issues it (type service_account, token_uri the endpoint), and registers
// its public key.
func (s *Server) NewKey(t testing.TB, email string) ([]byte, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	project := "p1"
	if at := strings.IndexByte(email, '@'); at >= 0 {
		project, _, _ = strings.Cut(email[at+1:], ".")
	}
	file, err := json.Marshal(map[string]string{
		"type":                        "service_account",
		"project_id":                  project,
		"private_key_id":              randomHex(20),
		"private_key":                 string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":                email,
		"client_id":                   "1",
		"auth_uri":                    "https://accounts.google.com/o/oauth2/auth",
		"token_uri":                   s.URL,
		"auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
		"universe_domain":             "googleapis.com",
	})
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.keys[email] = &key.PublicKey
	s.mu.Unlock()
	return file, key
}

// Grants returns the tokens granted so far, in order.
func (s *Server) Grants() []Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Grant(nil), s.grants...)
}

// Requests returns how many token requests reached the endpoint.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tried
}

// Refuse makes the endpoint answer every request with r (nil: grant
// again).
func (s *Server) Refuse(r *Refusal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusal = r
}

// token handles a token request.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tried++
	refusal := s.refusal
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "token requests are POSTs")
		return
	}
	if refusal != nil {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(refusal.Status)
		_, _ = w.Write([]byte(refusal.Body))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body must be a form")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != GrantType {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+gt)
		return
	}
	claims, err := s.verify(r.PostForm.Get("assertion"))
	if err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_grant", err.Error())
		return
	}
	g := Grant{Email: claims.Iss, Scope: claims.Scope, Token: "ya29." + randomHex(32), Expiry: time.Now().Add(TokenLifetime)}
	s.mu.Lock()
	s.grants = append(s.grants, g)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": g.Token,
		"expires_in":   int(TokenLifetime / time.Second),
		"token_type":   "Bearer",
	})
}

// errInvalidSignature is Google's answer to an assertion whose signature
// does not verify (or whose iss is unknown).
var errInvalidSignature = errors.New("invalid JWT signature")

type claimSet struct {
	Iss   string `json:"iss"`
	Scope string `json:"scope"`
	Aud   string `json:"aud"`
	Sub   string `json:"sub"`
	Iat   int64  `json:"iat"`
	Exp   int64  `json:"exp"`
}

// verify checks the assertion as Google does and returns its claims.
func (s *Server) verify(assertion string) (*claimSet, error) {
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return nil, errors.New("invalid JWT: the assertion is not a JWS")
	}
	var header struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := decodePart(parts[0], &header); err != nil || header.Alg != "RS256" {
		return nil, errors.New("invalid JWT: the header must name alg RS256")
	}
	var c claimSet
	if err := decodePart(parts[1], &c); err != nil {
		return nil, errors.New("invalid JWT: the claim set is not JSON")
	}
	s.mu.Lock()
	pub := s.keys[c.Iss]
	s.mu.Unlock()
	if pub == nil {
		return nil, errInvalidSignature
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, errInvalidSignature
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return nil, errInvalidSignature
	}
	now := time.Now()
	iat, exp := time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
	switch {
	case c.Aud != s.URL:
		return nil, errors.New("invalid JWT: aud must be the token endpoint")
	case c.Scope == "":
		return nil, errors.New("invalid JWT: no valid scopes given")
	case c.Iat == 0 || c.Exp == 0 || iat.After(now.Add(clockSkew)) || !exp.After(now) || exp.Sub(iat) > maxAssertionLifetime:
		return nil, errors.New("invalid JWT: token must be a short-lived token (60 minutes) and in a reasonable timeframe")
	}
	return &c, nil
}

func decodePart(p string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// randomHex returns n random bytes in hex (crypto/rand.Read never fails).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
