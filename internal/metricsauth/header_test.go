package metricsauth

import (
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	cases := []struct {
		name, header, want string
		ok                 bool
	}{
		{"no header", "", "", false},
		{"Bearer and a token", "Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl", true},
		{"the scheme is case-insensitive", "bEaReR abc", "abc", true},
		{"surrounding spaces are trimmed", "  Bearer abc\t", "abc", true},
		{"another scheme", "Basic dXNlcjpwYXNz", "", false},
		{"a scheme that only starts with Bearer", "Bearerx abc", "", false},
		{"the scheme alone", "Bearer", "", false},
		{"the scheme and a space", "Bearer ", "", false},
		{"two spaces before the token", "Bearer  abc", "", false},
		{"a tab instead of the space", "Bearer\tabc", "", false},
		{"a space inside the token", "Bearer abc def", "", false},
		{"a control character in the token", "Bearer abc\x00def", "", false},
		{"non-ASCII in the token", "Bearer abcé", "", false},
		{"a token alone", "abc", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := bearerToken(c.header)
			if got != c.want || ok != c.ok {
				t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", c.header, got, ok, c.want, c.ok)
			}
		})
	}
}

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer abc", "BEARER  abc", "Basic abc", "Bearer ", " Bearer x ", "Bearer a b", "Bearer \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		token, ok := bearerToken(header)
		if !ok {
			if token != "" {
				t.Fatalf("rejected %q but returned a token", header)
			}
			return
		}
		h := strings.TrimSpace(header)
		if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") || h[7:] != token {
			t.Fatalf("accepted %q, which is not \"Bearer \" and a token, as %q", header, token)
		}
		if token == "" || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
			t.Fatalf("accepted %q with the empty or non-visible token %q", header, token)
		}
		if again, ok := bearerToken("Bearer " + token); !ok || again != token {
			t.Fatalf("token %q from %q does not survive a round trip", token, header)
		}
	})
}
