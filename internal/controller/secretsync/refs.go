package secretsync

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/keyferry/keyferry/internal/provider"
)

// Parts of a PEM bundle a kubernetes.io/tls Secret takes, per target key.
const (
	partCert = "cert" // tls.crt: the certificates
	partKey  = "key"  // tls.key: the private key
)

// objectRef is one value a SecretSync reads through a SecretProviderClass:
// an object, which of its versions, and how its content is turned into the
// bytes the Secret holds. It travels through the engine and the fetch layer
// as a provider.Ref (see ref and parseRef), so each distinct reading is
// cached on its own.
type objectRef struct {
	Type, Name string
	// Version pins a version; empty is the latest.
	Version string
	// Index selects the Index-th newest version (objectVersionHistory);
	// -1 reads Version (or the latest).
	Index    int
	Encoding string
	Format   string
	// Part extracts the certificates or the private key (kubernetes.io/tls).
	Part string
}

// ref encodes o as "<type>/<name>" plus, when set, a query of the options
// ("secret/db-password?encoding=base64&index=1"); the version goes in
// Ref.Version. The encoding is canonical, so equal readings share a cache
// entry.
func (o objectRef) ref() provider.Ref {
	q := url.Values{}
	if o.Index >= 0 {
		q.Set("index", strconv.Itoa(o.Index))
	}
	if o.Encoding != "" && o.Encoding != EncodingUTF8 {
		q.Set("encoding", o.Encoding)
	}
	if o.Format != "" {
		q.Set("format", o.Format)
	}
	if o.Part != "" {
		q.Set("part", o.Part)
	}
	key := o.Type + "/" + o.Name
	if len(q) > 0 {
		key += "?" + q.Encode()
	}
	return provider.Ref{Key: key, Version: o.Version}
}

// parseRef decodes a provider.Ref that ref produced.
func parseRef(r provider.Ref) (objectRef, error) {
	o := objectRef{Index: -1, Version: r.Version}
	path, query, _ := strings.Cut(r.Key, "?")
	var ok bool
	if o.Type, o.Name, ok = strings.Cut(path, "/"); !ok || o.Name == "" {
		return o, fmt.Errorf("%w: %q is not a SecretProviderClass object reference", provider.ErrInvalidConfig, r.Key)
	}
	switch o.Type {
	case ObjectTypeSecret, ObjectTypeKey, ObjectTypeCert:
	default:
		return o, fmt.Errorf("%w: %q is not a SecretProviderClass object reference", provider.ErrInvalidConfig, r.Key)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return o, fmt.Errorf("%w: %q is not a SecretProviderClass object reference", provider.ErrInvalidConfig, r.Key)
	}
	if s := q.Get("index"); s != "" {
		if o.Index, err = strconv.Atoi(s); err != nil || o.Index < 0 {
			return o, fmt.Errorf("%w: %q is not a SecretProviderClass object reference", provider.ErrInvalidConfig, r.Key)
		}
	}
	o.Encoding, o.Format, o.Part = q.Get("encoding"), q.Get("format"), q.Get("part")
	return o, nil
}

// vaultKey is the remote key of the object as the azurekv provider
// addresses it.
func (o objectRef) vaultKey() string { return o.Type + "/" + o.Name }

// describe names the object for error messages.
func (o objectRef) describe() string {
	s := o.Type + " " + strconv.Quote(o.Name)
	switch {
	case o.Index == 0:
		s += " (newest version)"
	case o.Index > 0:
		s += fmt.Sprintf(" (%d versions before the newest)", o.Index)
	case o.Version != "":
		s += " version " + strconv.Quote(o.Version)
	}
	return s
}
