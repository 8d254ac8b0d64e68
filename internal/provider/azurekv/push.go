package azurekv

// This file is the write side (PushSecret) of the Azure Key Vault client,
// with ESO's meaning of a remote key: "name" or "secret/name" is a secret,
// "key/name" a key imported from a PEM private key (PKCS#8, PKCS#1 or SEC 1)
// or a JSON Web Key with its private part, "cert/name" a certificate
// imported from a password-less PKCS#12 file or PEM (the certificate and
// its PKCS#8 private key). What keyferry creates carries ESO's tag
// managed-by: external-secrets (so an object ESO pushed counts as pushed by
// keyferry), an object without it is never written nor deleted, and an
// unchanged value is not written again (Key Vault would add a version).
// A push's metadata (ESO's PushSecretMetadata, pushmetadata.go) sets a
// secret's expiry, content type and tags, and a key's or certificate's
// tags.
//
// Key Vault has no check-and-set: Push reads the object's current version
// again right before it writes and refuses (provider.ErrConflict) when it
// is not the version Inspect saw, which narrows the window in which another
// writer's update can be lost to the time between that read and the write,
// but does not close it.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/keyferry/keyferry/internal/engine/render"
	"github.com/keyferry/keyferry/internal/provider"
)

var _ provider.Pusher = (*Client)(nil)

// remote is what Key Vault holds for an object, read for a push: never a
// value in an error.
type remote struct {
	exists  bool
	version string
	tags    map[string]*string
	// value is a secret's value; contentType its content type, expires
	// its expires attribute.
	value       *string
	contentType *string
	expires     *time.Time
	// jwk is a key's public JSON Web Key; cer a certificate's DER.
	jwk *azkeys.JSONWebKey
	cer []byte
}

func (r remote) managed() bool {
	v := r.tags[provider.ManagedByKey]
	return v != nil && *v == provider.ManagedByValue
}

// pushTarget parses a PushRef: the object type, its name, and whether the
// ref can be pushed at all (a property only into a secret).
func pushTarget(ref provider.PushRef) (objectType, name string, err error) {
	objectType, name, err = parseKey(ref.RemoteKey)
	if err != nil {
		return "", "", err
	}
	if ref.Property != "" && objectType != objectSecret {
		return "", "", fmt.Errorf("%w: remote key %q: a property can only be pushed into a secret, not into a %s", provider.ErrInvalidPush, ref.RemoteKey, describeType(objectType))
	}
	return objectType, name, nil
}

func describeType(objectType string) string {
	return map[string]string{objectSecret: "secret", objectCert: "certificate", objectKey: "key"}[objectType]
}

// read reads the current version of an object; a missing one (or a
// soft-deleted one, which reads as missing) is not an error.
func (c *Client) read(ctx context.Context, objectType, name string) (remote, error) {
	what := "reading " + describe(objectType, name, "") + " to push"
	var (
		r   remote
		err error
	)
	switch objectType {
	case objectKey:
		var resp azkeys.GetKeyResponse
		if resp, err = c.keys.GetKey(ctx, name, "", nil); err == nil {
			r = remote{exists: true, tags: resp.Tags, jwk: resp.Key}
			if resp.Key != nil && resp.Key.KID != nil {
				r.version = resp.Key.KID.Version()
			}
		}
	case objectCert:
		var resp azcertificates.GetCertificateResponse
		if resp, err = c.certs.GetCertificate(ctx, name, "", nil); err == nil {
			r = remote{exists: true, tags: resp.Tags, cer: resp.CER}
			if resp.ID != nil {
				r.version = resp.ID.Version()
			}
		}
	default:
		var resp azsecrets.GetSecretResponse
		if resp, err = c.secrets.GetSecret(ctx, name, "", nil); err == nil {
			r = remote{exists: true, tags: resp.Tags, value: resp.Value, contentType: resp.ContentType}
			if resp.Attributes != nil {
				r.expires = resp.Attributes.Expires
			}
			if resp.ID != nil {
				r.version = resp.ID.Version()
			}
		}
	}
	if err != nil {
		err = mapError(err, what)
		if errors.Is(err, provider.ErrNotFound) {
			return remote{}, nil
		}
		return remote{}, err
	}
	return r, nil
}

// Inspect reads the state of the object ref names: it exists, carries ESO's
// managed-by tag, its current version (the token Push checks), and for a
// property whether the secret's value is a JSON object holding it.
func (c *Client) Inspect(ctx context.Context, ref provider.PushRef) (provider.RemoteState, error) {
	objectType, name, err := pushTarget(ref)
	if err != nil {
		return provider.RemoteState{}, err
	}
	r, err := c.read(ctx, objectType, name)
	if err != nil || !r.exists {
		return provider.RemoteState{}, err
	}
	st := provider.RemoteState{Exists: true, Managed: r.managed(), Version: r.version}
	if ref.Property != "" && r.value != nil {
		var fields map[string]json.RawMessage
		if json.Unmarshal([]byte(*r.value), &fields) == nil {
			_, st.PropertyExists = fields[ref.Property]
		}
	}
	return st, nil
}

// Push writes v at ref provided the object is still as want says: it
// exists or not, and its current version is want.Version (re-read right
// before the write; see the file's comment). A secret gets the value (the
// whole Secret as a JSON object of strings, as ESO), or with a property
// the value as one string field of the secret's JSON object, its other
// fields kept; a key or certificate is imported. The new version carries
// ESO's managed-by tag and, as ESO, the metadata's tags (spec.tags) in
// place of the current version's, or without spec.tags the current
// version's; a secret's version also carries the metadata's expiry (none
// without spec.expirationDate) and content type (else the current one).
// As ESO, nothing is written when the object already holds the value and,
// for a secret, the expiry and the content type asked (a change of tags
// alone writes no version: it comes with the next one).
func (c *Client) Push(ctx context.Context, ref provider.PushRef, v provider.PushValue, want provider.RemoteState) (bool, error) {
	objectType, name, err := pushTarget(ref)
	if err != nil {
		return false, err
	}
	what := describe(objectType, name, "")
	op := "pushing to " + what
	if ref.Property != "" {
		op = fmt.Sprintf("pushing property %q of %s", ref.Property, what)
	}
	if want.Exists && !want.Managed {
		return false, fmt.Errorf("%s: %w", op, provider.ErrNotManaged)
	}
	md, err := metadataFor(objectType, v.Metadata)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	value, err := pushedBytes(objectType, v)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	// Everything that can be refused without I/O is refused before the
	// re-read.
	var prepared any
	switch objectType {
	case objectKey:
		if prepared, err = importedKey(v.SecretKey, value); err != nil {
			return false, fmt.Errorf("%s: %w", op, err)
		}
	case objectCert:
		if prepared, err = importedCertificate(v.SecretKey, value); err != nil {
			return false, fmt.Errorf("%s: %w", op, err)
		}
	}
	cur, err := c.read(ctx, objectType, name)
	if err != nil {
		return false, err
	}
	switch {
	case cur.exists != want.Exists, cur.exists && cur.version != want.Version:
		return false, fmt.Errorf("%s: %w", op, provider.ErrConflict)
	case cur.exists && !cur.managed():
		return false, fmt.Errorf("%s: %w", op, provider.ErrNotManaged)
	}
	tags := pushedTags(cur.tags, md)

	switch objectType {
	case objectKey:
		key := prepared.(*azkeys.JSONWebKey)
		if cur.exists && samePublicKey(key, cur.jwk) {
			return false, nil
		}
		if _, err := c.keys.ImportKey(ctx, name, azkeys.ImportKeyParameters{Key: key, Tags: tags}, nil); err != nil {
			return false, mapError(err, op)
		}
	case objectCert:
		cert := prepared.(certificateImport)
		if cur.exists && bytes.Equal(cert.leaf, cur.cer) {
			return false, nil
		}
		if _, err := c.certs.ImportCertificate(ctx, name, azcertificates.ImportCertificateParameters{
			Base64EncodedCertificate: &cert.content,
			CertificatePolicy:        &azcertificates.CertificatePolicy{SecretProperties: &azcertificates.SecretProperties{ContentType: &cert.contentType}},
			Tags:                     tags,
		}, nil); err != nil {
			return false, mapError(err, op)
		}
	default:
		next, err := secretValue(ref, v, value, cur)
		if err != nil {
			return false, fmt.Errorf("%s: %w", op, err)
		}
		if cur.exists && secretUnchanged(cur, next, md) {
			return false, nil
		}
		params := azsecrets.SetSecretParameters{Value: &next, ContentType: cur.contentType, Tags: tags}
		if md.contentType != nil {
			params.ContentType = md.contentType
		}
		if md.expires != nil {
			params.SecretAttributes = &azsecrets.SecretAttributes{Expires: md.expires}
		}
		if _, err := c.secrets.SetSecret(ctx, name, params, nil); err != nil {
			return false, mapError(err, op)
		}
	}
	return true, nil
}

// metadataFor parses a push's metadata for an object type: expirationDate
// and contentType apply only to a secret (ESO ignores them for keys and
// certificates; keyferry refuses what it would not honour).
func metadataFor(objectType string, raw []byte) (pushMetadata, error) {
	md, err := parsePushMetadata(raw)
	if err != nil {
		return pushMetadata{}, err
	}
	if objectType != objectSecret {
		if fields := md.secretOnly(); len(fields) > 0 {
			return pushMetadata{}, fmt.Errorf("%w: metadata.%s applies only to a secret, not to a %s; remove it", provider.ErrInvalidPush, fields[0], describeType(objectType))
		}
	}
	return md, nil
}

// pushedTags are the tags of a pushed version: the metadata's tags when it
// has spec.tags (as ESO, they replace the current ones), else the current
// version's; and ESO's managed-by tag.
func pushedTags(current map[string]*string, md pushMetadata) map[string]*string {
	tags := map[string]*string{}
	if md.tags != nil {
		for k, v := range md.tags {
			tags[k] = pointerTo(v)
		}
	} else {
		maps.Copy(tags, current)
	}
	tags[provider.ManagedByKey] = pointerTo(provider.ManagedByValue)
	return tags
}

// secretUnchanged says whether a secret's current version already is what
// a push would write, as ESO decides it: the same value, the same expiry
// (both none, or the same second), and the content type asked (any when
// the metadata asks none). Tags are not compared (ESO does not).
func secretUnchanged(cur remote, next string, md pushMetadata) bool {
	if cur.value == nil || *cur.value != next {
		return false
	}
	switch {
	case (cur.expires == nil) != (md.expires == nil):
		return false
	case cur.expires != nil && cur.expires.Unix() != md.expires.Unix():
		return false
	}
	return md.contentType == nil || (cur.contentType != nil && *cur.contentType == *md.contentType)
}

// pushedBytes is the value a push writes: the key's bytes, or the whole
// Secret as a JSON object of strings (ESO), which only a secret can hold.
func pushedBytes(objectType string, v provider.PushValue) ([]byte, error) {
	if !v.Whole() {
		return v.Value, nil
	}
	if objectType != objectSecret {
		return nil, fmt.Errorf("%w: a whole Secret can only be pushed into a secret, not into a %s; name one secretKey", provider.ErrInvalidPush, describeType(objectType))
	}
	m := make(map[string]string, len(v.Secret))
	for k, b := range v.Secret {
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("%w: key %q of the source Secret is not UTF-8 text, which a Key Vault secret holds", provider.ErrInvalidPush, k)
		}
		m[k] = string(b)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: the source Secret cannot be encoded as JSON", provider.ErrInvalidPush)
	}
	return b, nil
}

// secretValue computes a secret's next value (see Push).
func secretValue(ref provider.PushRef, v provider.PushValue, value []byte, cur remote) (string, error) {
	if !utf8.Valid(value) {
		return "", fmt.Errorf("%w: secretKey %q is not UTF-8 text, which a Key Vault secret holds", provider.ErrInvalidPush, v.SecretKey)
	}
	if ref.Property == "" {
		return string(value), nil
	}
	if !utf8.ValidString(ref.Property) {
		return "", fmt.Errorf("%w: property %q is not UTF-8 text", provider.ErrInvalidPush, ref.Property)
	}
	fields := map[string]json.RawMessage{}
	if cur.exists && cur.value != nil && *cur.value != "" {
		// The decoder's error is not kept: it may quote the value.
		if err := json.Unmarshal([]byte(*cur.value), &fields); err != nil || fields == nil {
			return "", fmt.Errorf("%w: the value of secret %q is not a JSON object, so property %q cannot be set in it", provider.ErrInvalidPush, ref.RemoteKey, ref.Property)
		}
		var old string
		if raw, ok := fields[ref.Property]; ok && json.Unmarshal(raw, &old) == nil && old == string(value) {
			return *cur.value, nil
		}
	}
	field, err := json.Marshal(string(value))
	if err != nil {
		return "", fmt.Errorf("%w: secretKey %q cannot be encoded as JSON", provider.ErrInvalidPush, v.SecretKey)
	}
	fields[ref.Property] = field
	b, err := json.Marshal(fields)
	if err != nil {
		return "", fmt.Errorf("%w: the value of secret %q cannot be encoded as JSON", provider.ErrInvalidPush, ref.RemoteKey)
	}
	return string(b), nil
}

// importedKey reads a private key to import: PEM (PKCS#8 "PRIVATE KEY",
// PKCS#1 "RSA PRIVATE KEY", SEC 1 "EC PRIVATE KEY", as ESO) or a JSON Web
// Key with its private part. Errors never quote the key.
func importedKey(secretKey string, value []byte) (*azkeys.JSONWebKey, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: secretKey %q is not a private key Key Vault can import: %s", provider.ErrInvalidPush, secretKey, why)
	}
	if block, _ := pem.Decode(value); block != nil {
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			return nil, bad("its PEM block is not a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY")
		}
		if err != nil {
			return nil, bad("the " + block.Type + " PEM block cannot be parsed")
		}
		jwk, err := jwkOf(key)
		if err != nil {
			return nil, bad(err.Error())
		}
		return jwk, nil
	}
	var jwk azkeys.JSONWebKey
	if err := json.Unmarshal(value, &jwk); err != nil || jwk.Kty == nil {
		return nil, bad("it is neither PEM nor a JSON Web Key")
	}
	switch *jwk.Kty {
	case azkeys.KeyTypeRSA:
		if len(jwk.N) == 0 || len(jwk.E) == 0 || len(jwk.D) == 0 {
			return nil, bad("an RSA JSON Web Key needs n, e and d")
		}
	case azkeys.KeyTypeEC:
		if jwk.Crv == nil || len(jwk.X) == 0 || len(jwk.Y) == 0 || len(jwk.D) == 0 {
			return nil, bad("an EC JSON Web Key needs crv, x, y and d")
		}
	default:
		return nil, bad("its key type (kty) is not RSA or EC")
	}
	jwk.KID = nil
	return &jwk, nil
}

// jwkOf turns a parsed RSA or EC private key into a JSON Web Key.
func jwkOf(key any) (*azkeys.JSONWebKey, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if len(k.Primes) != 2 {
			return nil, errors.New("a multi-prime RSA key cannot be imported")
		}
		k.Precompute()
		return &azkeys.JSONWebKey{
			Kty: pointerTo(azkeys.KeyTypeRSA),
			N:   k.N.Bytes(), E: big.NewInt(int64(k.E)).Bytes(), D: k.D.Bytes(),
			P: k.Primes[0].Bytes(), Q: k.Primes[1].Bytes(),
			DP: k.Precomputed.Dp.Bytes(), DQ: k.Precomputed.Dq.Bytes(), QI: k.Precomputed.Qinv.Bytes(),
		}, nil
	case *ecdsa.PrivateKey:
		crv := map[string]azkeys.CurveName{"P-256": azkeys.CurveNameP256, "P-384": azkeys.CurveNameP384, "P-521": azkeys.CurveNameP521}[k.Curve.Params().Name]
		if crv == "" {
			return nil, fmt.Errorf("curve %s is not P-256, P-384 or P-521", k.Curve.Params().Name)
		}
		size := (k.Curve.Params().BitSize + 7) / 8
		pub, err := k.PublicKey.Bytes() // 0x04 || X || Y
		if err != nil {
			return nil, errors.New("the EC key is invalid")
		}
		d, err := k.Bytes()
		if err != nil {
			return nil, errors.New("the EC key is invalid")
		}
		return &azkeys.JSONWebKey{Kty: pointerTo(azkeys.KeyTypeEC), Crv: &crv, X: pub[1 : 1+size], Y: pub[1+size:], D: d}, nil
	default:
		return nil, fmt.Errorf("a %T key cannot be imported (RSA or EC)", key)
	}
}

// samePublicKey compares the public parts of two keys (Key Vault returns
// only those).
func samePublicKey(a, b *azkeys.JSONWebKey) bool {
	if a == nil || b == nil || a.Kty == nil || b.Kty == nil || *a.Kty != *b.Kty {
		return false
	}
	if *a.Kty == azkeys.KeyTypeRSA {
		return bytes.Equal(trimZeros(a.N), trimZeros(b.N)) && bytes.Equal(trimZeros(a.E), trimZeros(b.E))
	}
	return a.Crv != nil && b.Crv != nil && *a.Crv == *b.Crv && bytes.Equal(a.X, b.X) && bytes.Equal(a.Y, b.Y)
}

func trimZeros(b []byte) []byte { return bytes.TrimLeft(b, "\x00") }

// certificateImport is a certificate ready to import.
type certificateImport struct {
	content     string // what Key Vault's import takes: base64 PKCS#12, or PEM text
	contentType string
	leaf        []byte // the certificate's DER, to compare with the vault's
}

// importedCertificate reads a certificate to import: a password-less
// PKCS#12 file (ESO's recommended format) or PEM holding the certificate
// and its PKCS#8 private key, as Key Vault imports them.
func importedCertificate(secretKey string, value []byte) (certificateImport, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: secretKey %q is not a certificate Key Vault can import: %s", provider.ErrInvalidPush, secretKey, why)
	}
	if block, _ := pem.Decode(value); block != nil {
		var (
			leaf   []byte
			hasKey bool
		)
		rest := value
		for {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			switch b.Type {
			case "CERTIFICATE":
				if leaf == nil {
					if _, err := x509.ParseCertificate(b.Bytes); err != nil {
						return certificateImport{}, bad("its CERTIFICATE PEM block cannot be parsed")
					}
					leaf = b.Bytes
				}
			case "PRIVATE KEY":
				if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
					return certificateImport{}, bad("its PRIVATE KEY PEM block cannot be parsed")
				}
				hasKey = true
			case "RSA PRIVATE KEY", "EC PRIVATE KEY":
				return certificateImport{}, bad("Key Vault imports only PKCS#8 private keys (PRIVATE KEY), not " + b.Type)
			}
		}
		if leaf == nil || !hasKey {
			return certificateImport{}, bad("PEM must hold the certificate and its private key")
		}
		return certificateImport{content: string(value), contentType: "application/x-pem-file", leaf: leaf}, nil
	}
	// Bounded like the template helpers (size, key-derivation work): the
	// archive comes from a tenant's Secret.
	key, cert, _, err := render.DecodePKCS12(value, "")
	if err != nil || cert == nil || key == nil {
		return certificateImport{}, bad("it is neither PEM nor a password-less PKCS#12 file with a private key")
	}
	return certificateImport{content: base64.StdEncoding.EncodeToString(value), contentType: "application/x-pkcs12", leaf: cert.Raw}, nil
}

// Delete removes what keyferry pushed at ref: with a property, that field
// of the secret's JSON object (a new version without it, after the same
// version check as Push), and the secret once no field is left; without
// one, the object. Key Vault soft-deletes: the object stays recoverable
// for the vault's retention period and its name cannot be pushed again
// until it is purged or recovered. An object without ESO's managed-by tag,
// or that is gone, is left alone.
func (c *Client) Delete(ctx context.Context, ref provider.PushRef, _ provider.RemoteState) error {
	objectType, name, err := pushTarget(ref)
	if err != nil {
		return err
	}
	cur, err := c.read(ctx, objectType, name)
	if err != nil || !cur.exists || !cur.managed() {
		return err
	}
	what := describe(objectType, name, "")
	if ref.Property != "" {
		fields := map[string]json.RawMessage{}
		if cur.value == nil || json.Unmarshal([]byte(*cur.value), &fields) != nil {
			return nil // not an object: the property is not there
		}
		if _, ok := fields[ref.Property]; !ok {
			return nil
		}
		delete(fields, ref.Property)
		if len(fields) > 0 {
			op := fmt.Sprintf("deleting property %q of %s", ref.Property, what)
			b, err := json.Marshal(fields)
			if err != nil {
				return fmt.Errorf("%s: %w: the value cannot be encoded as JSON", op, provider.ErrInvalidPush)
			}
			again, err := c.read(ctx, objectType, name)
			if err != nil {
				return err
			}
			if !again.exists || again.version != cur.version {
				return fmt.Errorf("%s: %w", op, provider.ErrConflict)
			}
			next := string(b)
			params := azsecrets.SetSecretParameters{Value: &next, ContentType: cur.contentType, Tags: cur.tags}
			if cur.expires != nil {
				params.SecretAttributes = &azsecrets.SecretAttributes{Expires: cur.expires}
			}
			_, err = c.secrets.SetSecret(ctx, name, params, nil)
			return mapError(err, op)
		}
	}
	op := "deleting " + what
	switch objectType {
	case objectKey:
		_, err = c.keys.DeleteKey(ctx, name, nil)
	case objectCert:
		_, err = c.certs.DeleteCertificate(ctx, name, nil)
	default:
		_, err = c.secrets.DeleteSecret(ctx, name, nil)
	}
	err = mapError(err, op)
	if errors.Is(err, provider.ErrNotFound) {
		return nil // deleted meanwhile
	}
	return err
}

func pointerTo[T any](v T) *T { return &v }
