package azurekv

import (
	"bytes"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

const (
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	tokenLifetime          = time.Hour
	miAPIVersion           = "2019-08-01"
)

// serveLogin is Entra ID (login.microsoftonline.com) and the managed
// identity endpoint.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/msi/token" {
		s.serveManagedIdentity(w, r)
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(segs) == 4 && segs[1] == "v2.0" && segs[2] == ".well-known" && segs[3] == "openid-configuration" && r.Method == http.MethodGet:
		s.serveDiscovery(w, segs[0])
	case len(segs) == 4 && segs[1] == "oauth2" && segs[2] == "v2.0" && segs[3] == "token" && r.Method == http.MethodPost:
		s.serveToken(w, r, segs[0])
	case len(segs) == 4 && segs[1] == "discovery" && segs[2] == "v2.0" && segs[3] == "keys" && r.Method == http.MethodGet:
		s.mu.Lock()
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.signKey.PublicKey, KeyID: s.signKID, Algorithm: "RS256", Use: "sig"}}}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, set)
	default:
		writeEntraError(w, http.StatusNotFound, "invalid_request", 900561, fmt.Sprintf("%s %s is not an endpoint of this test server.", r.Method, r.URL.Path))
	}
}

func (s *Server) serveDiscovery(w http.ResponseWriter, tenant string) {
	if tenant != s.tenant {
		writeEntraError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
		return
	}
	base := s.login.URL + "/" + tenant
	writeJSON(w, http.StatusOK, map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                base + "/v2.0",
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         base + "/oauth2/v2.0/devicecode",
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
		"cloud_graph_host_name":                 "graph.windows.net",
		"msgraph_host":                          "graph.microsoft.com",
	})
}

// serveToken is the v2.0 token endpoint for the client credentials grant.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	s.mu.Lock()
	s.tokenReqs++
	s.mu.Unlock()

	if tenant != s.tenant {
		writeEntraError(w, http.StatusBadRequest, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found.", tenant))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeEntraError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		writeEntraError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt))
		return
	}
	// MSAL adds the OpenID Connect scopes, which Entra ID ignores here.
	var scopes []string
	for _, sc := range strings.Fields(r.PostForm.Get("scope")) {
		switch sc {
		case "openid", "offline_access", "profile", "email":
		default:
			scopes = append(scopes, sc)
		}
	}
	var resource string
	ok := len(scopes) == 1
	if ok {
		resource, ok = strings.CutSuffix(scopes[0], "/.default")
	}
	if !ok || !strings.HasPrefix(resource, "https://") {
		writeEntraError(w, http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", r.PostForm.Get("scope")))
		return
	}
	clientID := r.PostForm.Get("client_id")
	s.mu.Lock()
	app, found := s.apps[clientID]
	var a App
	if found {
		a = *app
	}
	s.mu.Unlock()
	if !found {
		writeEntraError(w, http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clientID, s.tenant))
		return
	}

	switch {
	case r.PostForm.Has("client_secret"):
		if a.ClientSecret == "" || subtle.ConstantTimeCompare([]byte(a.ClientSecret), []byte(r.PostForm.Get("client_secret"))) != 1 {
			writeEntraError(w, http.StatusUnauthorized, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", clientID))
			return
		}
	case r.PostForm.Get("client_assertion_type") == assertionTypeJWTBearer:
		assertion := r.PostForm.Get("client_assertion")
		unverified := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(assertion, unverified); err != nil {
			writeEntraError(w, http.StatusBadRequest, "invalid_client", 50027, "JWT token is invalid or malformed.")
			return
		}
		if iss, _ := unverified["iss"].(string); iss == clientID {
			if status, code, n, msg := s.verifyCertificateAssertion(a, assertion); status != 0 {
				writeEntraError(w, status, code, n, msg)
				return
			}
		} else if status, code, n, msg := s.verifyFederatedAssertion(a, assertion, unverified); status != 0 {
			writeEntraError(w, status, code, n, msg)
			return
		}
	default:
		writeEntraError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}

	tok, err := s.issueToken(resource, a.ClientID, a.ObjectID)
	if err != nil {
		writeEntraError(w, http.StatusInternalServerError, "temporarily_unavailable", 50001, err.Error())
		return
	}
	secs := int(tokenLifetime.Seconds()) - 1
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     secs,
		"ext_expires_in": secs,
		"access_token":   tok,
	})
}

// verifyCertificateAssertion checks MSAL's client certificate assertion: a
// JWT signed (PS256, or RS256 for older clients) with the private key of the
// app's certificate, naming it by thumbprint, for this token endpoint.
func (s *Server) verifyCertificateAssertion(a App, assertion string) (int, string, int, string) {
	if a.Certificate == nil {
		return http.StatusUnauthorized, "invalid_client", 700027, fmt.Sprintf("Client assertion failed signature validation: the app '%s' has no certificate credential.", a.ClientID)
	}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"PS256", "RS256", "ES256"}),
		jwt.WithExpirationRequired(),
		jwt.WithAudience(s.TokenEndpoint()),
		jwt.WithIssuer(a.ClientID),
		jwt.WithSubject(a.ClientID),
	).Parse(assertion, func(t *jwt.Token) (any, error) {
		if !certMatches(t.Header, a.Certificate) {
			return nil, errors.New("the assertion's x5t/x5t#S256 does not name a certificate registered for the app")
		}
		return a.Certificate.PublicKey, nil
	})
	if err != nil {
		return http.StatusUnauthorized, "invalid_client", 700027, fmt.Sprintf("Client assertion failed signature validation: %v.", err)
	}
	return 0, "", 0, ""
}

func certMatches(header map[string]any, cert *x509.Certificate) bool {
	for key, want := range map[string][]byte{"x5t#S256": thumbprintSHA256(cert.Raw), "x5t": thumbprintSHA1(cert.Raw)} {
		v, ok := header[key].(string)
		if !ok {
			continue
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding, base64.URLEncoding} {
			if got, err := enc.DecodeString(v); err == nil && bytes.Equal(got, want) {
				return true
			}
		}
	}
	return false
}

// verifyFederatedAssertion checks a workload identity assertion: a token of
// a trusted issuer whose issuer, subject and audience match one of the app's
// federated credentials, signed by one of the issuer's keys.
func (s *Server) verifyFederatedAssertion(a App, assertion string, unverified jwt.MapClaims) (int, string, int, string) {
	iss, _ := unverified["iss"].(string)
	sub, _ := unverified["sub"].(string)
	auds, _ := unverified.GetAudience()
	noMatch := func() (int, string, int, string) {
		return http.StatusBadRequest, "invalid_request", 70021, fmt.Sprintf("No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'.", iss, sub, strings.Join(auds, ","))
	}
	var match *FederatedCredential
	for i, fc := range a.Federated {
		aud := fc.Audience
		if aud == "" {
			aud = TokenExchangeAudience
		}
		if fc.Issuer == iss && fc.Subject == sub && slices.Contains(auds, aud) {
			match = &a.Federated[i]
			break
		}
	}
	if match == nil {
		return noMatch()
	}
	s.mu.Lock()
	keys := s.issuers[iss]
	s.mu.Unlock()
	if keys == nil {
		return http.StatusUnauthorized, "invalid_client", 700211, fmt.Sprintf("No matching federated identity record found for presented assertion issuer '%s'.", iss)
	}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256", "ES256", "PS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(iss),
	).Parse(assertion, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if ks := keys.Key(kid); len(ks) > 0 {
			return ks[0].Key, nil
		}
		if kid == "" && len(keys.Keys) == 1 {
			return keys.Keys[0].Key, nil
		}
		return nil, fmt.Errorf("no key %q in the issuer's JWKS", kid)
	})
	if err != nil {
		return http.StatusUnauthorized, "invalid_client", 700024, fmt.Sprintf("Client assertion is not within its valid time range or failed signature validation: %v.", err)
	}
	return 0, "", 0, ""
}

// serveManagedIdentity is the App Service managed identity endpoint
// (api-version 2019-08-01), which azidentity uses when IDENTITY_ENDPOINT and
// IDENTITY_HEADER are set.
func (s *Server) serveManagedIdentity(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.tokenReqs++
	header := s.miHeader
	s.mu.Unlock()

	miError := func(status int, msg string) {
		writeJSON(w, status, map[string]any{"statusCode": status, "message": msg, "correlationId": newUUID()})
	}
	if r.Method != http.MethodGet {
		miError(http.StatusMethodNotAllowed, "Only GET is supported.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-IDENTITY-HEADER")), []byte(header)) != 1 {
		miError(http.StatusUnauthorized, "The X-IDENTITY-HEADER header is missing or invalid.")
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") != miAPIVersion {
		miError(http.StatusBadRequest, "The api-version is missing or unsupported.")
		return
	}
	resource := strings.TrimSuffix(q.Get("resource"), "/.default")
	if resource == "" {
		miError(http.StatusBadRequest, "The resource parameter is required.")
		return
	}
	s.mu.Lock()
	var mi *ManagedIdentity
	for _, m := range s.identities {
		switch {
		case q.Has("client_id"):
			if m.ClientID == q.Get("client_id") {
				mi = m
			}
		case q.Has("mi_res_id"):
			if m.ResourceID != "" && strings.EqualFold(m.ResourceID, q.Get("mi_res_id")) {
				mi = m
			}
		case q.Has("principal_id"):
			if m.ObjectID == q.Get("principal_id") {
				mi = m
			}
		default:
			if m.SystemAssigned {
				mi = m
			}
		}
	}
	var m ManagedIdentity
	if mi != nil {
		m = *mi
	}
	s.mu.Unlock()
	if mi == nil {
		miError(http.StatusBadRequest, "No User Assigned or Delegated Managed Identity found for specified ClientId/ResourceId/PrincipalId.")
		return
	}
	tok, err := s.issueToken(resource, m.ClientID, m.ObjectID)
	if err != nil {
		miError(http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(time.Now().Add(tokenLifetime).Unix(), 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    m.ClientID,
	})
}

// issueToken signs an access token for resource, as Entra ID's v1 tokens
// for Key Vault look.
func (s *Server) issueToken(resource, clientID, objectID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud":   resource,
		"iss":   "https://sts.windows.net/" + s.tenant + "/",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(tokenLifetime).Unix(),
		"appid": clientID,
		"oid":   objectID,
		"sub":   objectID,
		"tid":   s.tenant,
		"idtyp": "app",
		"ver":   "1.0",
	})
	t.Header["kid"] = s.signKID
	signed, err := t.SignedString(s.signKey)
	if err != nil {
		return "", fmt.Errorf("signing the access token: %w", err)
	}
	s.issued++
	return signed, nil
}

// writeEntraError writes Entra ID's OAuth error body.
func writeEntraError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	trace, corr := newUUID(), newUUID()
	ts := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, desc, trace, corr, ts),
		"error_codes":       []int{aadsts},
		"timestamp":         ts,
		"trace_id":          trace,
		"correlation_id":    corr,
		"error_uri":         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}
