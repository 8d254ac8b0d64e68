package azurekv

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Azure Container Registry's token service, as ESO's ACRAccessToken
// generator and `az acr login` use it (Azure/acr docs/AAD-OAuth.md):
//
//   - POST /oauth2/exchange, form grant_type=access_token, service=<registry
//     host>, tenant=<tenant> (optional), access_token=<Entra ID token for
//     Azure Resource Manager>: answers {"refresh_token": "..."} when the
//     token's principal holds a role on the registry.
//   - POST /oauth2/token, form grant_type=refresh_token, service, scope
//     (Docker's scope grammar, such as repository:foo:pull,push; several
//     separated by spaces), refresh_token: answers {"access_token": "..."}
//     granting the requested actions the principal's role allows.
//
// Errors are the Docker registry error bodies ACR sends:
// {"errors":[{"code":"UNAUTHORIZED","message":"..."}]}, 400 for a malformed
// request, 401 for a token it does not accept or a principal without a
// role, 404 for a registry that does not exist, 429 with Retry-After when
// throttled (ThrottleRegistry).

// RegistryRole is a principal's role on a registry (Azure RBAC's AcrPull
// and AcrPush).
type RegistryRole int

// Roles on a registry.
const (
	// AcrPull allows pull.
	AcrPull RegistryRole = iota + 1
	// AcrPush allows pull and push.
	AcrPush
)

// RegistryTokenIssuer is the issuer of the registry's refresh and access
// tokens.
const RegistryTokenIssuer = "Azure Container Registry"

// armAudiences are the audiences of Azure Resource Manager tokens that
// /oauth2/exchange accepts, in every cloud.
var armAudiences = []string{
	"https://management.azure.com", "https://management.core.windows.net",
	"https://management.usgovcloudapi.net", "https://management.core.usgovcloudapi.net",
	"https://management.chinacloudapi.cn", "https://management.core.chinacloudapi.cn",
}

// registryRefreshLifetime is ACR's refresh token lifetime (3 hours); access
// tokens last 75 minutes.
const (
	registryRefreshLifetime = 3 * time.Hour
	registryAccessLifetime  = 75 * time.Minute
)

// AddRegistry creates a registry whose host is name (such as
// example.azurecr.io); Router sends its requests to this server.
func (s *Server) AddRegistry(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.registries[name] == nil {
		s.registries[name] = map[string]RegistryRole{}
	}
}

// GrantRegistry gives the app or managed identity clientID a role on the
// registry (which AddRegistry must have created).
func (s *Server) GrantRegistry(registry, clientID string, role RegistryRole) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.registries[registry]; r != nil {
		r[clientID] = role
	}
}

// ThrottleRegistry answers the next count requests to the registry's token
// service with 429 Too Many Requests and Retry-After.
func (s *Server) ThrottleRegistry(retryAfter time.Duration, count int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.regThrottle = &throttle{retryAfter: retryAfter, remaining: count}
}

// RegistryRequests counts the requests to a path of the registries' token
// service, such as /oauth2/exchange.
func (s *Server) RegistryRequests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.regReqs[path]
}

// RegistryToken is what a token of the registry's token service says.
type RegistryToken struct {
	// Registry is the token's audience.
	Registry string
	// ClientID of the principal it was issued to.
	ClientID string
	// Refresh is true for a refresh token.
	Refresh bool
	// Access lists the granted scopes of an access token, such as
	// repository:foo:pull,push.
	Access []string
}

// VerifyRegistryToken checks that token was issued by this server's token
// service and returns what it grants.
func (s *Server) VerifyRegistryToken(token string) (RegistryToken, error) {
	claims, err := s.parseRegistryToken(token)
	if err != nil {
		return RegistryToken{}, err
	}
	rt := RegistryToken{}
	rt.Registry, _ = claims["aud"].(string)
	rt.ClientID, _ = claims["appid"].(string)
	rt.Refresh = claims["grant_type"] == "refresh_token"
	if acc, ok := claims["access"].([]any); ok {
		for _, a := range acc {
			m, _ := a.(map[string]any)
			typ, _ := m["type"].(string)
			name, _ := m["name"].(string)
			var actions []string
			if as, ok := m["actions"].([]any); ok {
				for _, x := range as {
					if v, ok := x.(string); ok {
						actions = append(actions, v)
					}
				}
			}
			rt.Access = append(rt.Access, typ+":"+name+":"+strings.Join(actions, ","))
		}
	}
	return rt, nil
}

func (s *Server) parseRegistryToken(token string) (jwt.MapClaims, error) {
	s.mu.Lock()
	pub := &s.signKey.PublicKey
	s.mu.Unlock()
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(RegistryTokenIssuer),
	).ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return pub, nil })
	if err != nil {
		return nil, err
	}
	return claims, nil
}

// serveRegistry is the token service of every registry of AddRegistry; the
// registry is the request's Host.
func (s *Server) serveRegistry(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	s.mu.Lock()
	s.regReqs[r.URL.Path]++
	roles, known := s.registries[host]
	var th *throttle
	if t := s.regThrottle; t != nil && t.remaining > 0 {
		t.remaining--
		th = t
	}
	s.mu.Unlock()
	if th != nil {
		w.Header().Set("Retry-After", strconv.Itoa(int(th.retryAfter.Seconds())))
		writeRegistryError(w, http.StatusTooManyRequests, "TOOMANYREQUESTS", "too many requests, please retry later")
		return
	}
	if !known {
		writeRegistryError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("registry %s not found", host))
		return
	}
	if r.URL.Path != "/oauth2/exchange" && r.URL.Path != "/oauth2/token" {
		writeRegistryError(w, http.StatusNotFound, "NOT_FOUND", "the requested resource was not found")
		return
	}
	if r.Method != http.MethodPost {
		writeRegistryError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "The operation is unsupported.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		writeRegistryError(w, http.StatusBadRequest, "BAD_REQUEST", "the request must be form-encoded")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeRegistryError(w, http.StatusBadRequest, "BAD_REQUEST", "the request body is not a form")
		return
	}
	if svc := r.PostForm.Get("service"); svc != host {
		writeRegistryError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("service %q does not match the registry %s", svc, host))
		return
	}
	if r.URL.Path == "/oauth2/exchange" {
		s.serveExchange(w, r, host, roles)
		return
	}
	s.serveRegistryToken(w, r, host, roles)
}

// serveExchange trades an Entra ID token for Azure Resource Manager for a
// registry refresh token.
func (s *Server) serveExchange(w http.ResponseWriter, r *http.Request, registry string, roles map[string]RegistryRole) {
	f := r.PostForm
	if gt := f.Get("grant_type"); gt != "access_token" {
		writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", fmt.Sprintf("grant_type %q is not supported", gt))
		return
	}
	if f.Get("access_token") == "" {
		writeRegistryError(w, http.StatusBadRequest, "BAD_REQUEST", "access_token is required")
		return
	}
	s.mu.Lock()
	pub, kid := &s.signKey.PublicKey, s.signKID
	s.mu.Unlock()
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer("https://sts.windows.net/"+s.tenant+"/"),
	).ParseWithClaims(f.Get("access_token"), claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != kid {
			return nil, errors.New("unknown signing key")
		}
		return pub, nil
	})
	if err != nil {
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "the access token is invalid or expired")
		return
	}
	aud, _ := claims["aud"].(string)
	if !slices.Contains(armAudiences, strings.TrimSuffix(aud, "/")) {
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", fmt.Sprintf("the access token's audience %q is not Azure Resource Manager", aud))
		return
	}
	if tenant := f.Get("tenant"); tenant != "" && tenant != claims["tid"] {
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", fmt.Sprintf("the access token was not issued by tenant %s", tenant))
		return
	}
	clientID, _ := claims["appid"].(string)
	s.mu.Lock()
	_, ok := roles[clientID]
	s.mu.Unlock()
	if !ok {
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", fmt.Sprintf("authentication required, visit https://aka.ms/acr/authorization for more information. The identity %s has no role on %s.", clientID, registry))
		return
	}
	tok, err := s.signRegistryToken(jwt.MapClaims{
		"aud": registry, "appid": clientID, "tenant": claims["tid"], "grant_type": "refresh_token",
	}, registryRefreshLifetime)
	if err != nil {
		writeRegistryError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"refresh_token": tok})
}

// serveRegistryToken trades a refresh token for an access token of the
// requested scope, granting the actions the principal's role allows.
func (s *Server) serveRegistryToken(w http.ResponseWriter, r *http.Request, registry string, roles map[string]RegistryRole) {
	f := r.PostForm
	if gt := f.Get("grant_type"); gt != "refresh_token" {
		writeRegistryError(w, http.StatusBadRequest, "UNSUPPORTED", fmt.Sprintf("grant_type %q is not supported", gt))
		return
	}
	if f.Get("scope") == "" {
		writeRegistryError(w, http.StatusBadRequest, "BAD_REQUEST", "scope is required")
		return
	}
	claims, err := s.parseRegistryToken(f.Get("refresh_token"))
	if err != nil || claims["grant_type"] != "refresh_token" || claims["aud"] != registry {
		writeRegistryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "the refresh token is invalid or expired")
		return
	}
	clientID, _ := claims["appid"].(string)
	s.mu.Lock()
	role := roles[clientID]
	s.mu.Unlock()
	allowed := map[string]bool{"pull": role >= AcrPull, "push": role >= AcrPush}
	var access []map[string]any
	for _, sc := range strings.Fields(f.Get("scope")) {
		typ, rest, ok1 := strings.Cut(sc, ":")
		i := strings.LastIndex(rest, ":")
		if !ok1 || i <= 0 || typ == "" {
			writeRegistryError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("scope %q is not type:name:actions", sc))
			return
		}
		name := rest[:i]
		if strings.Contains(name, "*") {
			writeRegistryError(w, http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf("scope %q: wildcards are not supported", sc))
			return
		}
		actions := []string{}
		for _, a := range strings.Split(rest[i+1:], ",") {
			if allowed[a] && !slices.Contains(actions, a) {
				actions = append(actions, a)
			}
		}
		access = append(access, map[string]any{"type": typ, "name": name, "actions": actions})
	}
	tok, err := s.signRegistryToken(jwt.MapClaims{
		"aud": registry, "appid": clientID, "grant_type": "access_token", "access": access,
	}, registryAccessLifetime)
	if err != nil {
		writeRegistryError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok})
}

func (s *Server) signRegistryToken(claims jwt.MapClaims, lifetime time.Duration) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	claims["iss"] = RegistryTokenIssuer
	claims["iat"] = now.Unix()
	claims["nbf"] = now.Unix()
	claims["exp"] = now.Add(lifetime).Unix()
	claims["jti"] = newUUID()
	signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(s.signKey)
	if err != nil {
		return "", fmt.Errorf("signing the registry token: %w", err)
	}
	return signed, nil
}

// writeRegistryError writes a Docker registry error body, as ACR does.
func writeRegistryError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]any{{"code": code, "message": msg}}})
}

// isRegistryHost says whether host is a container registry of Azure's
// clouds, which Router sends to the server's registry.
func isRegistryHost(host string) bool {
	for _, suffix := range []string{".azurecr.io", ".azurecr.us", ".azurecr.cn"} {
		if strings.HasSuffix(host, suffix) {
			return true
		}
	}
	return false
}
