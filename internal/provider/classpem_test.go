package provider

import (
	"errors"
	"strings"
	"testing"
)

func TestPEMParts(t *testing.T) {
	block := func(typ, body string) string {
		return "-----BEGIN " + typ + "-----\n" + body + "\n-----END " + typ + "-----\n"
	}
	c1, c2 := block("CERTIFICATE", "Y2VydDE="), block("CERTIFICATE", "Y2VydDI=")
	k1, k2 := block("EC PRIVATE KEY", "a2V5MQ=="), block("PRIVATE KEY", "a2V5Mg==")
	tests := []struct {
		name             string
		in               string
		wantCert, wantKy string
	}{
		{name: "key then chain", in: k1 + c1 + c2, wantCert: c1 + c2, wantKy: k1},
		{name: "chain then two keys: the first key", in: "text before\n" + c1 + k2 + k1, wantCert: c1, wantKy: k2},
		{name: "no key", in: c1, wantCert: c1},
		{name: "not PEM", in: "hunter2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, err := PEMCertificates([]byte(tt.in))
			if tt.wantCert == "" {
				if !errors.Is(err, ErrBadResponse) || strings.Contains(err.Error(), "hunter2") {
					t.Errorf("PEMCertificates error = %v, want ErrBadResponse without the content", err)
				}
			} else if err != nil || string(cert) != tt.wantCert {
				t.Errorf("PEMCertificates = %q, %v; want %q", cert, err, tt.wantCert)
			}
			key, err := PEMPrivateKey([]byte(tt.in))
			if tt.wantKy == "" {
				if !errors.Is(err, ErrBadResponse) {
					t.Errorf("PEMPrivateKey error = %v, want ErrBadResponse", err)
				}
			} else if err != nil || string(key) != tt.wantKy {
				t.Errorf("PEMPrivateKey = %q, %v; want %q", key, err, tt.wantKy)
			}
		})
	}
}
