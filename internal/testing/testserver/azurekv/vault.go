package azurekv

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var validName = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

// serveVault is Key Vault's data plane.
func (s *Server) serveVault(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.vaultReqs[strings.TrimSuffix(r.URL.Path, "/")]++
	s.mu.Unlock()

	apiVersion := r.URL.Query().Get("api-version")
	if apiVersion == "" {
		writeVaultError(w, http.StatusBadRequest, "BadParameter", "The request URI contains an invalid or missing api-version parameter.", "")
		return
	}
	caller, ok := s.authenticate(w, r)
	if !ok {
		return
	}

	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	coll := segs[0]
	if r.Method != http.MethodGet || strings.HasPrefix(coll, "deleted") {
		s.serveWrite(w, r, caller, segs)
		return
	}
	if coll != collSecrets && coll != collCertificates && coll != collKeys {
		writeVaultError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The requested resource %s was not found.", r.URL.Path), "")
		return
	}
	if r.Method != http.MethodGet {
		writeVaultError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested operation is not supported by this test server.", "")
		return
	}
	var name, ver string
	list := false
	switch {
	case len(segs) == 1:
		list = true
	case len(segs) == 2:
		name = segs[1]
	case len(segs) == 3 && segs[2] == "versions":
		name, list = segs[1], true
	case len(segs) == 3:
		name, ver = segs[1], segs[2]
	default:
		writeVaultError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The requested resource %s was not found.", r.URL.Path), "")
		return
	}
	if name != "" && !validName.MatchString(name) {
		writeVaultError(w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("The request URI contains an invalid name: %s", name), "")
		return
	}

	need, action := permissionFor(coll, list)
	if !s.authorize(w, r, caller, need, action, coll, name) {
		return
	}

	if list {
		s.serveList(w, r, coll, name, apiVersion)
		return
	}
	s.serveGet(w, coll, name, ver)
}

// authorize answers 403 (Key Vault's RBAC refusal, naming the data action)
// when caller lacks need, and 429 when the request is throttled; it says
// whether the request may go on.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, c caller, need Access, action, coll, name string) bool {
	if c.access&need == 0 {
		resource := fmt.Sprintf("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/keyferry/providers/microsoft.keyvault/vaults/%s/%s/%s", s.vaultName, coll, name)
		msg := fmt.Sprintf("Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=%s;oid=%s;iss=https://sts.windows.net/%s/\r\nAction: '%s'\r\nResource: '%s'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: %s;location=westeurope\r\n",
			c.clientID, c.objectID, s.tenant, action, strings.TrimSuffix(resource, "/"), s.vaultName)
		writeVaultError(w, http.StatusForbidden, "Forbidden", msg, "ForbiddenByRbac")
		return false
	}
	if retryAfter, throttled := s.throttled(r.URL.Path); throttled {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
		writeVaultError(w, http.StatusTooManyRequests, "Throttled", "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached", "")
		return false
	}
	return true
}

type caller struct {
	clientID, objectID string
	access             Access
}

// authenticate checks the bearer token; without one (or with one it did not
// issue) it answers 401 with Key Vault's challenge.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (caller, bool) {
	challenge := func(msg string) (caller, bool) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="%s/%s", resource="%s"`, s.login.URL, s.tenant, VaultResource))
		writeVaultError(w, http.StatusUnauthorized, "Unauthorized", msg, "")
		return caller{}, false
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return challenge("AKV10000: Request is missing a Bearer or PoP token.")
	}
	raw, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return challenge("AKV10001: Unable to parse the authorization header.")
	}
	s.mu.Lock()
	pub, kid := &s.signKey.PublicKey, s.signKID
	s.mu.Unlock()
	issuer := "https://sts.windows.net/" + s.tenant + "/"
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(VaultResource),
	).ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if t.Header["kid"] != kid {
			return nil, errors.New("unknown signing key")
		}
		return pub, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return challenge(fmt.Sprintf("AKV10032: Invalid issuer. Expected one of https://sts.windows.net/%s/, found %v.", s.tenant, claims["iss"]))
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return challenge(fmt.Sprintf("AKV10022: Invalid audience. Expected %s, found: %v.", VaultResource, claims["aud"]))
	case errors.Is(err, jwt.ErrTokenExpired):
		return challenge("AKV10020: Token has expired.")
	default:
		return challenge("AKV10013: Token signature validation failed.")
	}
	c := caller{}
	c.clientID, _ = claims["appid"].(string)
	c.objectID, _ = claims["oid"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.apps[c.clientID]; ok {
		c.access = a.Access
	}
	for _, mi := range s.identities {
		if mi.ClientID == c.clientID {
			c.access = mi.Access
		}
	}
	return c, true
}

func permissionFor(coll string, list bool) (Access, string) {
	switch {
	case coll == collSecrets && list:
		return SecretsList, "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
	case coll == collSecrets:
		return SecretsGet, "Microsoft.KeyVault/vaults/secrets/getSecret/action"
	case coll == collCertificates && list:
		return CertificatesList, "Microsoft.KeyVault/vaults/certificates/read"
	case coll == collCertificates:
		return CertificatesGet, "Microsoft.KeyVault/vaults/certificates/read"
	case list:
		return KeysList, "Microsoft.KeyVault/vaults/keys/read"
	default:
		return KeysGet, "Microsoft.KeyVault/vaults/keys/read"
	}
}

func (s *Server) throttled(path string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.throttles {
		if t.remaining > 0 && strings.HasPrefix(path, t.pathPrefix) {
			t.remaining--
			return t.retryAfter, true
		}
	}
	return 0, false
}

func (s *Server) serveGet(w http.ResponseWriter, coll, name, ver string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.objects[coll][name]
	var v *version
	if ver == "" {
		v = latest(vs)
	} else {
		for _, c := range vs {
			if c.id == ver {
				v = c
			}
		}
	}
	if v == nil {
		ref := name
		if ver != "" {
			ref += "/" + ver
		}
		writeNotFound(w, coll, ref)
		return
	}
	if !v.enabled {
		noun := map[string]string{collSecrets: "secret", collCertificates: "certificate", collKeys: "key"}[coll]
		inner := map[string]string{collSecrets: "SecretDisabled", collCertificates: "CertificateDisabled", collKeys: "KeyDisabled"}[coll]
		writeVaultError(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("Operation get is not allowed on a disabled %s.", noun), inner)
		return
	}
	writeJSON(w, http.StatusOK, s.bundle(coll, name, v))
}

func (s *Server) serveList(w http.ResponseWriter, r *http.Request, coll, name, apiVersion string) {
	q := r.URL.Query()
	pageSize := s.pageSize
	if m := q.Get("maxresults"); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 || n > DefaultPageSize {
			writeVaultError(w, http.StatusBadRequest, "BadParameter", "maxresults must be between 1 and 25.", "")
			return
		}
		pageSize = n
	}
	offset := 0
	if tok := q.Get("$skiptoken"); tok != "" {
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err == nil {
			offset, err = strconv.Atoi(string(b))
		}
		if err != nil || offset < 0 {
			writeVaultError(w, http.StatusBadRequest, "BadParameter", "The $skiptoken is invalid.", "")
			return
		}
	}

	s.mu.Lock()
	var items []map[string]any
	if name == "" {
		for _, n := range sortedNames(s.objects[coll]) {
			items = append(items, s.item(coll, n, latest(s.objects[coll][n]), false))
		}
	} else {
		vs, ok := s.objects[coll][name]
		if !ok {
			s.mu.Unlock()
			writeNotFound(w, coll, name)
			return
		}
		for _, v := range vs {
			items = append(items, s.item(coll, name, v, true))
		}
	}
	s.mu.Unlock()

	end := min(offset+pageSize, len(items))
	page := []map[string]any{}
	if offset < len(items) {
		page = items[offset:end]
	}
	var next any
	if end < len(items) {
		v := url.Values{}
		v.Set("api-version", apiVersion)
		v.Set("$skiptoken", base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end))))
		if q.Get("maxresults") != "" {
			v.Set("maxresults", q.Get("maxresults"))
		}
		next = s.vault.URL + r.URL.Path + "?" + v.Encode()
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": page, "nextLink": next})
}

func (s *Server) objectURL(coll, name, ver string) string {
	u := s.vault.URL + "/" + coll + "/" + name
	if ver != "" {
		u += "/" + ver
	}
	return u
}

func (s *Server) attributes(v *version) map[string]any {
	a := map[string]any{
		"enabled":         v.enabled,
		"created":         v.created.Unix(),
		"updated":         v.updated.Unix(),
		"recoveryLevel":   "Recoverable+Purgeable",
		"recoverableDays": 90,
	}
	if v.notBefore != nil {
		a["nbf"] = v.notBefore.Unix()
	}
	if v.expires != nil {
		a["exp"] = v.expires.Unix()
	}
	return a
}

// bundle is the body of a get: SecretBundle, CertificateBundle or KeyBundle.
func (s *Server) bundle(coll, name string, v *version) map[string]any {
	b := map[string]any{"attributes": s.attributes(v)}
	if len(v.tags) > 0 {
		b["tags"] = v.tags
	}
	switch coll {
	case collSecrets:
		b["id"] = s.objectURL(collSecrets, name, v.id)
		b["value"] = v.value
		if v.contentType != "" {
			b["contentType"] = v.contentType
		}
		if v.managed {
			b["managed"] = true
			b["kid"] = s.objectURL(collKeys, name, v.id)
		}
	case collCertificates:
		b["id"] = s.objectURL(collCertificates, name, v.id)
		b["kid"] = s.objectURL(collKeys, name, v.id)
		b["sid"] = s.objectURL(collSecrets, name, v.id)
		b["x5t"] = base64.RawURLEncoding.EncodeToString(thumbprintSHA1(v.cer))
		b["cer"] = base64.StdEncoding.EncodeToString(v.cer)
	case collKeys:
		key := map[string]any{"kid": s.objectURL(collKeys, name, v.id)}
		for k, val := range v.jwk {
			key[k] = val
		}
		b["key"] = key
		if v.managed {
			b["managed"] = true
		}
	}
	return b
}

// item is one entry of a list: SecretItem, CertificateItem or KeyItem.
func (s *Server) item(coll, name string, v *version, withVersion bool) map[string]any {
	ver := ""
	if withVersion {
		ver = v.id
	}
	it := map[string]any{"attributes": s.attributes(v)}
	if len(v.tags) > 0 {
		it["tags"] = v.tags
	}
	switch coll {
	case collSecrets:
		it["id"] = s.objectURL(coll, name, ver)
		if v.contentType != "" {
			it["contentType"] = v.contentType
		}
		if v.managed {
			it["managed"] = true
		}
	case collCertificates:
		it["id"] = s.objectURL(coll, name, ver)
		it["x5t"] = base64.RawURLEncoding.EncodeToString(thumbprintSHA1(v.cer))
	case collKeys:
		it["kid"] = s.objectURL(coll, name, ver)
		if v.managed {
			it["managed"] = true
		}
	}
	return it
}

func writeNotFound(w http.ResponseWriter, coll, ref string) {
	const help = " If you recently deleted this %s you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
	switch coll {
	case collSecrets:
		writeVaultError(w, http.StatusNotFound, "SecretNotFound", fmt.Sprintf("A secret with (name/id) %s was not found in this key vault."+help, ref, "secret"), "")
	case collCertificates:
		writeVaultError(w, http.StatusNotFound, "CertificateNotFound", fmt.Sprintf("A certificate with (name/id) %s was not found in this key vault."+help, ref, "certificate"), "")
	default:
		writeVaultError(w, http.StatusNotFound, "KeyNotFound", fmt.Sprintf("A key with (name/id) %s was not found in this key vault."+help, ref, "key"), "")
	}
}

// writeVaultError writes Key Vault's error body:
// {"error":{"code":...,"message":...,"innererror":{"code":...}}}.
func writeVaultError(w http.ResponseWriter, status int, code, msg, inner string) {
	e := map[string]any{"code": code, "message": msg}
	if inner != "" {
		e["innererror"] = map[string]any{"code": inner}
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-keyvault-service-version", "1.9.2164.1")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
