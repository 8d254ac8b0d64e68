package azurekv

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"
)

// This file is Key Vault's write side, as a PushSecret uses it: Set Secret
// (PUT /secrets/{name}: a new version each time), Update Secret (PATCH
// /secrets/{name}/{version}: tags, contentType, attributes), Import Key
// (PUT /keys/{name}), Import Certificate (POST /certificates/{name}/import,
// PKCS#12 or PEM, creating the certificate's managed key and secret),
// Delete (DELETE /{collection}/{name}) with soft-delete: a deleted object
// is kept as deleted-but-recoverable for 90 days, reads of it answer 404,
// and its name cannot be reused (409 ObjectIsDeletedButRecoverable) until
// it is purged (DELETE /deleted{collection}/{name}) or recovered. Get
// Deleted (GET /deleted{collection}/{name}) reads it.

// maxSecretSize is Key Vault's limit on a secret value (25 KB).
const maxSecretSize = 25 * 1024

// Key Vault's limits on tags.
const (
	maxTags        = 15
	maxTagNameLen  = 512
	maxTagValueLen = 256
)

// retentionDays is the soft-delete retention period.
const retentionDays = 90

// deletedObject is a soft-deleted object with all its versions.
type deletedObject struct {
	versions  []*version
	deletedAt time.Time
}

// Kind names a Key Vault collection, for the inspection helpers.
type Kind string

// Collections of a vault.
const (
	KindSecret      Kind = collSecrets
	KindKey         Kind = collKeys
	KindCertificate Kind = collCertificates
)

// Object is the current version of a secret, key or certificate, for tests
// to assert what a client wrote.
type Object struct {
	Version     string
	Versions    int // how many versions exist
	Value       string
	ContentType string
	CER         []byte         // certificates: DER
	JWK         map[string]any // keys: the public JWK (without kid)
	Tags        map[string]string
	Expires     *time.Time // the exp attribute (UTC, to the second)
	Enabled     bool
	Managed     bool
}

// Object returns the current version of an object that is not deleted.
func (s *Server) Object(kind Kind, name string) (Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.objects[string(kind)][name]
	v := latest(vs)
	if v == nil {
		return Object{}, false
	}
	return Object{
		Version: v.id, Versions: len(vs), Value: v.value, ContentType: v.contentType,
		CER: append([]byte(nil), v.cer...), JWK: maps.Clone(v.jwk), Tags: maps.Clone(v.tags),
		Expires: cloneTime(v.expires), Enabled: v.enabled, Managed: v.managed,
	}, true
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// IsDeleted says whether an object is soft-deleted (recoverable).
func (s *Server) IsDeleted(kind Kind, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.deleted[string(kind)][name]
	return ok
}

// Purge removes a soft-deleted object for good, as Purge Deleted does (a
// certificate with its secret and key), so a test can reuse its name; it
// says whether there was one.
func (s *Server) Purge(kind Kind, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	coll := string(kind)
	if _, ok := s.deleted[coll][name]; !ok {
		return false
	}
	delete(s.deleted[coll], name)
	if coll == collCertificates {
		delete(s.deleted[collSecrets], name)
		delete(s.deleted[collKeys], name)
	}
	return true
}

// serveWrite serves every request that is not a read of a live object.
func (s *Server) serveWrite(w http.ResponseWriter, r *http.Request, c caller, segs []string) {
	coll := segs[0]
	if deletedColl, ok := strings.CutPrefix(coll, "deleted"); ok && len(segs) == 2 && isColl(deletedColl) {
		s.serveDeleted(w, r, c, deletedColl, segs[1])
		return
	}
	if !isColl(coll) || len(segs) < 2 {
		writeVaultError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("The requested resource %s was not found.", r.URL.Path), "")
		return
	}
	name := segs[1]
	if !validName.MatchString(name) {
		writeVaultError(w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("The request URI contains an invalid name: %s", name), "")
		return
	}
	switch {
	case r.Method == http.MethodPut && len(segs) == 2 && coll == collSecrets:
		if s.authorize(w, r, c, SecretsSet, "Microsoft.KeyVault/vaults/secrets/setSecret/action", coll, name) {
			s.setSecret(w, r, name)
		}
	case r.Method == http.MethodPatch && len(segs) <= 3 && coll == collSecrets:
		ver := ""
		if len(segs) == 3 {
			ver = segs[2]
		}
		if s.authorize(w, r, c, SecretsSet, "Microsoft.KeyVault/vaults/secrets/write", coll, name) {
			s.updateSecret(w, r, name, ver)
		}
	case r.Method == http.MethodPut && len(segs) == 2 && coll == collKeys:
		if s.authorize(w, r, c, KeysImport, "Microsoft.KeyVault/vaults/keys/import/action", coll, name) {
			s.importKey(w, r, name)
		}
	case r.Method == http.MethodPost && len(segs) == 3 && segs[2] == "import" && coll == collCertificates:
		if s.authorize(w, r, c, CertificatesImport, "Microsoft.KeyVault/vaults/certificates/import/action", coll, name) {
			s.importCertificate(w, r, name)
		}
	case r.Method == http.MethodDelete && len(segs) == 2:
		need := map[string]Access{collSecrets: SecretsDelete, collKeys: KeysDelete, collCertificates: CertificatesDelete}[coll]
		if s.authorize(w, r, c, need, "Microsoft.KeyVault/vaults/"+coll+"/delete", coll, name) {
			s.deleteObject(w, coll, name)
		}
	default:
		writeVaultError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested operation is not supported by this test server.", "")
	}
}

func isColl(c string) bool { return c == collSecrets || c == collKeys || c == collCertificates }

// attributesBody is the attributes object of a write.
type attributesBody struct {
	Enabled   *bool  `json:"enabled"`
	NotBefore *int64 `json:"nbf"`
	Expires   *int64 `json:"exp"`
}

func (a *attributesBody) apply(v *version) {
	if a == nil {
		return
	}
	if a.Enabled != nil {
		v.enabled = *a.Enabled
	}
	if a.NotBefore != nil {
		t := time.Unix(*a.NotBefore, 0).UTC()
		v.notBefore = &t
	}
	if a.Expires != nil {
		t := time.Unix(*a.Expires, 0).UTC()
		v.expires = &t
	}
}

// readBody decodes a JSON request body, answering 400 as Key Vault does
// when it is not JSON.
func readBody(w http.ResponseWriter, r *http.Request, into any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeVaultError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request is too large.", "")
		return false
	}
	if err := json.Unmarshal(b, into); err != nil {
		writeVaultError(w, http.StatusBadRequest, "BadParameter", "The request body is not valid JSON.", "")
		return false
	}
	return true
}

// tagsOf checks tags against Key Vault's limits (null values are dropped).
func tagsOf(w http.ResponseWriter, in map[string]*string) (map[string]string, bool) {
	if len(in) > maxTags {
		writeVaultError(w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("The number of tags (%d) exceeds the maximum of %d.", len(in), maxTags), "")
		return nil, false
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		if len(k) > maxTagNameLen || k == "" {
			writeVaultError(w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("Tag names must be 1 to %d characters long.", maxTagNameLen), "")
			return nil, false
		}
		if v == nil {
			continue
		}
		if len(*v) > maxTagValueLen {
			writeVaultError(w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("The value of tag %s exceeds %d characters.", k, maxTagValueLen), "")
			return nil, false
		}
		out[k] = *v
	}
	return out, true
}

// writable answers 409 when name is soft-deleted in coll and 403 when its
// current version is managed by a certificate; s.mu is held.
func (s *Server) writable(w http.ResponseWriter, coll, name string) bool {
	noun := map[string]string{collSecrets: "Secret", collCertificates: "Certificate", collKeys: "Key"}[coll]
	if _, gone := s.deleted[coll][name]; gone {
		writeVaultError(w, http.StatusConflict, "Conflict",
			fmt.Sprintf("%s %s is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the %s can only be recovered or purged.", noun, name, strings.ToLower(noun)),
			"ObjectIsDeletedButRecoverable")
		return false
	}
	if v := latest(s.objects[coll][name]); v != nil && v.managed {
		writeVaultError(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("%s %s is managed by a certificate and cannot be changed directly.", noun, name), "")
		return false
	}
	return true
}

func (s *Server) setSecret(w http.ResponseWriter, r *http.Request, name string) {
	var body struct {
		Value       *string            `json:"value"`
		ContentType *string            `json:"contentType"`
		Tags        map[string]*string `json:"tags"`
		Attributes  *attributesBody    `json:"attributes"`
	}
	if !readBody(w, r, &body) {
		return
	}
	if body.Value == nil {
		writeVaultError(w, http.StatusBadRequest, "BadParameter", "The parameter value is required.", "")
		return
	}
	if len(*body.Value) > maxSecretSize {
		writeVaultError(w, http.StatusBadRequest, "BadParameter", fmt.Sprintf("The secret value exceeds the maximum size of %d bytes.", maxSecretSize), "")
		return
	}
	tags, ok := tagsOf(w, body.Tags)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.writable(w, collSecrets, name) {
		return
	}
	v := s.newVersion(nil)
	v.value = *body.Value
	if body.ContentType != nil {
		v.contentType = *body.ContentType
	}
	if len(tags) > 0 {
		v.tags = tags
	}
	body.Attributes.apply(v)
	s.add(collSecrets, name, v)
	writeJSON(w, http.StatusOK, s.bundle(collSecrets, name, v))
}

func (s *Server) updateSecret(w http.ResponseWriter, r *http.Request, name, ver string) {
	var body struct {
		ContentType *string            `json:"contentType"`
		Tags        map[string]*string `json:"tags"`
		Attributes  *attributesBody    `json:"attributes"`
	}
	if !readBody(w, r, &body) {
		return
	}
	tags, ok := tagsOf(w, body.Tags)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.find(collSecrets, name, ver)
	if v == nil {
		ref := name
		if ver != "" {
			ref += "/" + ver
		}
		writeNotFound(w, collSecrets, ref)
		return
	}
	if body.ContentType != nil {
		v.contentType = *body.ContentType
	}
	if body.Tags != nil {
		v.tags = tags
	}
	body.Attributes.apply(v)
	s.clock = s.clock.Add(time.Second)
	v.updated = s.clock
	b := s.bundle(collSecrets, name, v)
	delete(b, "value") // Update Secret does not return the value
	writeJSON(w, http.StatusOK, b)
}

// find returns a version of a live object (the current one for ver "").
func (s *Server) find(coll, name, ver string) *version {
	vs := s.objects[coll][name]
	if ver == "" {
		return latest(vs)
	}
	for _, v := range vs {
		if v.id == ver {
			return v
		}
	}
	return nil
}

func (s *Server) importKey(w http.ResponseWriter, r *http.Request, name string) {
	var body struct {
		Key        map[string]any     `json:"key"`
		HSM        *bool              `json:"hsm"`
		Tags       map[string]*string `json:"tags"`
		Attributes *attributesBody    `json:"attributes"`
	}
	if !readBody(w, r, &body) {
		return
	}
	jwk, msg := publicPartOf(body.Key)
	if msg != "" {
		writeVaultError(w, http.StatusBadRequest, "BadParameter", msg, "")
		return
	}
	tags, ok := tagsOf(w, body.Tags)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.writable(w, collKeys, name) {
		return
	}
	v := s.newVersion(nil)
	v.jwk = jwk
	if len(tags) > 0 {
		v.tags = tags
	}
	body.Attributes.apply(v)
	s.add(collKeys, name, v)
	writeJSON(w, http.StatusOK, s.bundle(collKeys, name, v))
}

// publicPartOf checks an imported JSON Web Key (RSA or EC with its private
// part, as a software-protected vault imports them) and returns its public
// JWK; msg says what is wrong otherwise.
func publicPartOf(key map[string]any) (jwk map[string]any, msg string) {
	if key == nil {
		return nil, "The parameter key is required."
	}
	str := func(k string) (string, bool) {
		v, ok := key[k].(string)
		if !ok || v == "" {
			return "", false
		}
		_, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
		return v, err == nil
	}
	ops := key["key_ops"]
	kty, _ := key["kty"].(string)
	switch kty {
	case "RSA":
		n, okN := str("n")
		e, okE := str("e")
		if _, okD := str("d"); !okN || !okE || !okD {
			return nil, "RSA key must contain n, e and the private exponent d."
		}
		if ops == nil {
			ops = []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}
		}
		return map[string]any{"kty": "RSA", "key_ops": ops, "n": n, "e": e}, ""
	case "EC":
		crv, _ := key["crv"].(string)
		x, okX := str("x")
		y, okY := str("y")
		if _, okD := str("d"); !okX || !okY || !okD {
			return nil, "EC key must contain x, y and the private key d."
		}
		switch crv {
		case "P-256", "P-384", "P-521", "P-256K":
		default:
			return nil, fmt.Sprintf("Invalid curve name %q.", crv)
		}
		if ops == nil {
			ops = []string{"sign", "verify"}
		}
		return map[string]any{"kty": "EC", "key_ops": ops, "crv": crv, "x": x, "y": y}, ""
	default:
		return nil, fmt.Sprintf("Key type %q is not supported for import into a software-protected vault (use RSA or EC).", kty)
	}
}

func (s *Server) importCertificate(w http.ResponseWriter, r *http.Request, name string) {
	var body struct {
		Value  string `json:"value"`
		Pwd    string `json:"pwd"`
		Policy *struct {
			SecretProps *struct {
				ContentType string `json:"contentType"`
			} `json:"secret_props"`
		} `json:"policy"`
		Tags       map[string]*string `json:"tags"`
		Attributes *attributesBody    `json:"attributes"`
	}
	if !readBody(w, r, &body) {
		return
	}
	contentType := "application/x-pkcs12"
	if body.Policy != nil && body.Policy.SecretProps != nil && body.Policy.SecretProps.ContentType != "" {
		contentType = body.Policy.SecretProps.ContentType
	}
	cert, msg := parseImport(body.Value, body.Pwd, contentType)
	if msg != "" {
		writeVaultError(w, http.StatusBadRequest, "BadParameter", msg, "")
		return
	}
	jwk, err := publicJWK(cert.PublicKey)
	if err != nil {
		writeVaultError(w, http.StatusBadRequest, "BadParameter", "The certificate's key type is not supported.", "")
		return
	}
	tags, ok := tagsOf(w, body.Tags)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.writable(w, collCertificates, name) {
		return
	}
	if _, gone := s.deleted[collSecrets][name]; gone {
		s.writable(w, collSecrets, name) // answers 409 for the companion
		return
	}
	v := s.newVersion(nil)
	v.cer = append([]byte(nil), cert.Raw...)
	if len(tags) > 0 {
		v.tags = tags
	}
	body.Attributes.apply(v)
	s.add(collCertificates, name, v)
	// The companions Key Vault creates: the secret (the imported content,
	// as imported) and the key (its public part), same name and version.
	sv := *v
	sv.cer, sv.value, sv.contentType, sv.managed = nil, body.Value, contentType, true
	s.add(collSecrets, name, &sv)
	kv := *v
	kv.cer, kv.jwk, kv.managed = nil, jwk, true
	s.add(collKeys, name, &kv)
	b := s.bundle(collCertificates, name, v)
	b["policy"] = map[string]any{
		"id":           s.objectURL(collCertificates, name, "policy"),
		"secret_props": map[string]any{"contentType": contentType},
		"issuer":       map[string]any{"name": "Unknown"},
	}
	writeJSON(w, http.StatusOK, b)
}

// parseImport reads an imported certificate: base64 PKCS#12 or PEM text
// (a certificate and its PKCS#8 private key). msg is Key Vault's message
// when the content cannot be read.
func parseImport(value, pwd, contentType string) (cert *x509.Certificate, msg string) {
	switch contentType {
	case "application/x-pem-file":
		var key crypto.PrivateKey
		rest := []byte(value)
		for {
			var block *pem.Block
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			switch block.Type {
			case "CERTIFICATE":
				if cert == nil {
					c, err := x509.ParseCertificate(block.Bytes)
					if err != nil {
						return nil, "The specified PEM X.509 certificate content can not be read."
					}
					cert = c
				}
			case "PRIVATE KEY":
				k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
				if err != nil {
					return nil, "The specified PEM private key content can not be read."
				}
				key = k
			default:
				return nil, fmt.Sprintf("The specified PEM content has an unsupported block %s (the private key must be PKCS#8).", block.Type)
			}
		}
		if cert == nil || key == nil {
			return nil, "The specified PEM X.509 certificate content is in an unexpected format. Please check if certificate is in valid PEM format."
		}
		return cert, ""
	case "application/x-pkcs12":
		raw, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			return nil, "The specified PKCS#12 X.509 certificate content is not base64 encoded."
		}
		_, c, _, err := pkcs12.DecodeChain(raw, pwd)
		if err != nil {
			return nil, "The specified PKCS#12 X.509 certificate content can not be read. Please check if certificate is in valid PKCS#12 format."
		}
		return c, ""
	default:
		return nil, fmt.Sprintf("The content type %s is not supported.", contentType)
	}
}

// deleteObject soft-deletes every version of an object (a certificate
// with its managed key and secret) and answers the deleted bundle, without
// the value.
func (s *Server) deleteObject(w http.ResponseWriter, coll, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.objects[coll][name]
	v := latest(vs)
	if v == nil {
		writeNotFound(w, coll, name)
		return
	}
	if v.managed {
		noun := map[string]string{collSecrets: "secret", collKeys: "key"}[coll]
		writeVaultError(w, http.StatusForbidden, "Forbidden", fmt.Sprintf("Operation delete is not allowed on a managed %s; delete the certificate %s instead.", noun, name), "")
		return
	}
	s.clock = s.clock.Add(time.Second)
	now := s.clock
	s.softDelete(coll, name, now)
	if coll == collCertificates {
		for _, c := range []string{collSecrets, collKeys} {
			if l := latest(s.objects[c][name]); l != nil && l.managed {
				s.softDelete(c, name, now)
			}
		}
	}
	writeJSON(w, http.StatusOK, s.deletedBundle(coll, name, v, now))
}

func (s *Server) softDelete(coll, name string, at time.Time) {
	s.deleted[coll][name] = &deletedObject{versions: s.objects[coll][name], deletedAt: at}
	delete(s.objects[coll], name)
}

func (s *Server) deletedBundle(coll, name string, v *version, at time.Time) map[string]any {
	b := s.bundle(coll, name, v)
	delete(b, "value")
	b["recoveryId"] = s.vault.URL + "/deleted" + coll + "/" + name
	b["deletedDate"] = at.Unix()
	b["scheduledPurgeDate"] = at.Add(retentionDays * 24 * time.Hour).Unix()
	return b
}

// serveDeleted serves Get Deleted and Purge Deleted of one object.
func (s *Server) serveDeleted(w http.ResponseWriter, r *http.Request, c caller, coll, name string) {
	noun := map[string]string{collSecrets: "Secrets", collKeys: "Keys", collCertificates: "Certificates"}[coll]
	switch r.Method {
	case http.MethodGet:
		need := map[string]Access{collSecrets: SecretsDelete, collKeys: KeysDelete, collCertificates: CertificatesDelete}[coll]
		if !s.authorize(w, r, c, need, "Microsoft.KeyVault/vaults/deleted"+noun+"/read", "deleted"+coll, name) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		d, ok := s.deleted[coll][name]
		if !ok {
			writeNotFound(w, coll, name)
			return
		}
		writeJSON(w, http.StatusOK, s.deletedBundle(coll, name, latest(d.versions), d.deletedAt))
	case http.MethodDelete:
		if !s.authorize(w, r, c, Purge, "Microsoft.KeyVault/vaults/deleted"+noun+"/delete", "deleted"+coll, name) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, ok := s.deleted[coll][name]; !ok {
			writeNotFound(w, coll, name)
			return
		}
		delete(s.deleted[coll], name)
		if coll == collCertificates {
			delete(s.deleted[collSecrets], name)
			delete(s.deleted[collKeys], name)
		}
		w.Header().Set("x-ms-keyvault-service-version", "1.9.2164.1")
		w.WriteHeader(http.StatusNoContent)
	default:
		writeVaultError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The requested operation is not supported by this test server.", "")
	}
}
