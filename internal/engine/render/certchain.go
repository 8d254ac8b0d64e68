package render

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"strings"
)

// ESO's certificate-chain helpers: filterCertChain and certSANs, and the
// chain ordering pkcs12cert applies. Ordering follows the key identifiers
// (a certificate's AuthorityKeyId names its issuer's SubjectKeyId); it is
// formatting only and proves nothing about trust: no signature, validity
// period or constraint is checked.

const (
	pemTypeCertificate = "CERTIFICATE"
	pemTypePrivateKey  = "PRIVATE KEY"
	pemTypePublicKey   = "PUBLIC KEY"

	// maxChain bounds the certificates one helper call reads; ordering
	// compares every pair.
	maxChain = 1000
)

var (
	errDisjunctChain error = safeError("found multiple leaf or disjunct certificates")
	errNoLeaf        error = safeError("no leaf certificate found")
	errChainCycle    error = safeError("the certificates' key identifiers form a cycle")
)

// orderChain orders certificates leaf, intermediates, root by their key
// identifiers: exactly one certificate must be nobody's issuer (the leaf).
// A certificate without an AuthorityKeyId names no issuer (ESO links an
// empty AuthorityKeyId to an empty SubjectKeyId, which makes a self-signed
// root the "issuer" of a leaf without a SubjectKeyId, as crypto/x509
// issues them, and fails the chain).
func orderChain(certs []*x509.Certificate) ([]*x509.Certificate, error) {
	parent := make([]int, len(certs))
	isParent := make([]bool, len(certs))
	for i := range certs {
		parent[i] = -1
		if len(certs[i].AuthorityKeyId) == 0 {
			continue
		}
		for j := range certs {
			if i != j && bytes.Equal(certs[i].AuthorityKeyId, certs[j].SubjectKeyId) {
				parent[i] = j
				isParent[j] = true
				break
			}
		}
	}
	leaf := -1
	for i := range certs {
		if isParent[i] {
			continue
		}
		if leaf >= 0 {
			return nil, errDisjunctChain
		}
		leaf = i
	}
	if leaf < 0 {
		return nil, errNoLeaf
	}
	var out []*x509.Certificate
	for i := leaf; i >= 0; i = parent[i] {
		if len(out) == len(certs) {
			return nil, errChainCycle
		}
		out = append(out, certs[i])
	}
	return out, nil
}

// parseCertChainPEM parses every PEM block of s as a certificate (none is
// not an error here).
func parseCertChainPEM(s string) ([]*x509.Certificate, error) {
	certs, err := parseCertsPEM(s)
	if err == errNoCertPEM {
		return nil, nil
	}
	return certs, err
}

// filterCertChain returns, from a chain of PEM certificates, the leaf, the
// intermediates or the root (certType "leaf", "intermediate", "root"), as
// ESO's helper does: the leaf only when it is not self-issued, the
// intermediates between the leaf and the root, the root only when the
// chain ends in one; the empty string otherwise (and for another
// certType).
func filterCertChain(certType, input string) (string, error) {
	certs, err := parseCertChainPEM(input)
	if err != nil {
		return "", err
	}
	ordered, err := orderChain(certs)
	if err != nil {
		return "", err
	}
	switch certType {
	case "leaf":
		c := ordered[0]
		if c.AuthorityKeyId != nil && !bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId) {
			return encodeCerts(ordered[:1]), nil
		}
	case "intermediate":
		if len(ordered) < 2 {
			return "", nil
		}
		end := 1
		for end < len(ordered) && !isRoot(ordered[end]) {
			end++
		}
		return encodeCerts(ordered[1:end]), nil
	case "root":
		if c := ordered[len(ordered)-1]; isRoot(c) {
			return encodeCerts([]*x509.Certificate{c}), nil
		}
	}
	return "", nil
}

// isRoot says whether a certificate names no other issuer than itself.
func isRoot(c *x509.Certificate) bool {
	return c.AuthorityKeyId == nil || bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId)
}

func encodeCerts(certs []*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: pemTypeCertificate, Bytes: c.Raw}))
	}
	return b.String()
}

// certSANs returns the subject alternative names of the first PEM
// certificate of input: DNS names, IP addresses, email addresses, then
// URIs, as ESO's helper does. Text before the first PEM block is ignored.
func certSANs(input string) ([]string, error) {
	if i := strings.Index(input, "-----BEGIN"); i > 0 {
		input = input[i:]
	}
	b, _ := pem.Decode([]byte(input))
	if b == nil {
		return nil, errNoCertPEM
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, errNotCertificate
	}
	sans := make([]string, 0, len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses)+len(c.URIs))
	sans = append(sans, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		sans = append(sans, ip.String())
	}
	sans = append(sans, c.EmailAddresses...)
	for _, u := range c.URIs {
		sans = append(sans, u.String())
	}
	return sans, nil
}

// certFuncs are ESO's certificate, key and PKCS#12 helpers.
func certFuncs() map[string]any {
	return map[string]any{
		"pkcs12key":                 pkcs12key,
		"pkcs12keyPass":             pkcs12keyPass,
		"pkcs12cert":                pkcs12cert,
		"pkcs12certPass":            pkcs12certPass,
		"pemToPkcs12":               pemToPkcs12,
		"pemToPkcs12Pass":           pemToPkcs12Pass,
		"fullPemToPkcs12":           fullPemToPkcs12,
		"fullPemToPkcs12Pass":       fullPemToPkcs12Pass,
		"pemTruststoreToPKCS12":     pemTruststoreToPKCS12,
		"pemTruststoreToPKCS12Pass": pemTruststoreToPKCS12Pass,
		"filterCertChain":           filterCertChain,
		"certSANs":                  certSANs,
		"jwkPublicKeyPem":           jwkPublicKeyPem,
		"jwkPrivateKeyPem":          jwkPrivateKeyPem,
		"rsaDecrypt":                rsaDecrypt,
	}
}
