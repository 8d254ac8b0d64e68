package ecrtoken

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, token, user, password string
		err                         error
	}{
		{"AWS's form", b64("AWS:eyJwYXlsb2Fk"), "AWS", "eyJwYXlsb2Fk", nil},
		{"a colon in the password is kept", b64("AWS:a:b"), "AWS", "a:b", nil},
		{"not base64", "%%%", "", "", ErrNotBase64},
		{"no colon", b64("AWSpassword"), "", "", ErrNotPair},
		{"empty user", b64(":pw"), "", "", ErrNotPair},
		{"empty password", b64("AWS:"), "", "", ErrNotPair},
		{"empty", "", "", "", ErrNotPair},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, p, err := Parse(tc.token)
			if !errors.Is(err, tc.err) || u != tc.user || p != tc.password {
				t.Fatalf("Parse = %q, %q, %v; want %q, %q, %v", u, p, err, tc.user, tc.password, tc.err)
			}
		})
	}
}

// FuzzParse: any token either splits into a non-empty user and password
// that rebuild it, or fails with an error that holds no part of it; never
// a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"QVdTOnB3", "", "%%%", "QVdT", "OnB3", "QVdTOmE6Yg=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		u, p, err := Parse(token)
		if err != nil {
			if u != "" || p != "" {
				t.Fatal("parts returned with an error")
			}
			if !errors.Is(err, ErrNotBase64) && !errors.Is(err, ErrNotPair) {
				t.Fatalf("unexpected error %v", err)
			}
			if len(token) > 3 && strings.Contains(err.Error(), token) {
				t.Fatal("the error holds the token")
			}
			return
		}
		if u == "" || p == "" || strings.Contains(u, ":") {
			t.Fatalf("user %q / password %q", u, p)
		}
		dec, _ := base64.StdEncoding.DecodeString(token)
		if string(dec) != u+":"+p {
			t.Fatal("the parts do not rebuild the token")
		}
	})
}
