package generator

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

// composition counts a password's characters by class.
type composition struct {
	letters, upper, digits, symbols, total int
	repeats                                bool
}

func compose(pw string, symbols string) composition {
	var c composition
	seen := map[rune]bool{}
	for _, r := range pw {
		c.total++
		if seen[r] {
			c.repeats = true
		}
		seen[r] = true
		switch {
		case strings.ContainsRune(symbols, r):
			// A symbol first: symbolCharacters may hold letters or digits,
			// which then count as symbols or as their class (checked by
			// the sums below).
			c.symbols++
		case r >= 'a' && r <= 'z':
			c.letters++
		case r >= 'A' && r <= 'Z':
			c.letters++
			c.upper++
		case r >= '0' && r <= '9':
			c.digits++
		}
	}
	return c
}

// decode undoes spec.encoding.
func decode(t *testing.T, encoding string, b []byte) string {
	t.Helper()
	var out []byte
	var err error
	switch encoding {
	case "", EncodingRaw:
		return string(b)
	case EncodingBase64:
		out, err = base64.StdEncoding.DecodeString(string(b))
	case EncodingBase64URL:
		out, err = base64.URLEncoding.DecodeString(string(b))
	case EncodingBase32:
		out, err = base32.StdEncoding.DecodeString(string(b))
	case EncodingHex:
		out, err = hex.DecodeString(string(b))
	default:
		t.Fatalf("unknown encoding %q", encoding)
	}
	if err != nil {
		t.Fatalf("decoding %s: %v", encoding, err)
	}
	return string(out)
}

func TestPasswordOptions(t *testing.T) {
	tests := []struct {
		name string
		spec genv1alpha1.PasswordSpec
		// want: keys, length, digits, symbols; symbolSet the symbols
		// allowed; noUpper, noRepeat what must hold.
		keys                    []string
		length, digits, symbols int
		symbolSet               string
		noUpper, noRepeat       bool
		encoding                string
	}{
		{name: "ESO's defaults: 24 characters, 6 digits, 6 symbols, no repeats",
			spec: genv1alpha1.PasswordSpec{Length: 24},
			keys: []string{"password"}, length: 24, digits: 6, symbols: 6, symbolSet: DefaultSymbolCharacters, noRepeat: true},
		{name: "length 0 means the default 24",
			spec: genv1alpha1.PasswordSpec{},
			keys: []string{"password"}, length: 24, digits: 6, symbols: 6, symbolSet: DefaultSymbolCharacters, noRepeat: true},
		{name: "digits and symbols default to 25 % of the length, rounded down",
			spec: genv1alpha1.PasswordSpec{Length: 10, AllowRepeat: true},
			keys: []string{"password"}, length: 10, digits: 2, symbols: 2, symbolSet: DefaultSymbolCharacters},
		{name: "ESO's documented example",
			spec: genv1alpha1.PasswordSpec{Length: 42, Digits: ptr(5), Symbols: ptr(5), SymbolCharacters: ptr("-_$@"), AllowRepeat: true},
			keys: []string{"password"}, length: 42, digits: 5, symbols: 5, symbolSet: "-_$@"},
		{name: "zero digits and zero symbols: letters only",
			spec: genv1alpha1.PasswordSpec{Length: 30, Digits: ptr(0), Symbols: ptr(0)},
			keys: []string{"password"}, length: 30, symbolSet: DefaultSymbolCharacters, noRepeat: true},
		{name: "digits and symbols fill the whole length",
			spec: genv1alpha1.PasswordSpec{Length: 8, Digits: ptr(4), Symbols: ptr(4)},
			keys: []string{"password"}, length: 8, digits: 4, symbols: 4, symbolSet: DefaultSymbolCharacters, noRepeat: true},
		{name: "noUpper: lower-case letters only",
			spec: genv1alpha1.PasswordSpec{Length: 26, Digits: ptr(0), Symbols: ptr(0), NoUpper: true},
			keys: []string{"password"}, length: 26, symbolSet: DefaultSymbolCharacters, noUpper: true, noRepeat: true},
		{name: "without repeats, all 52 letters fit",
			spec: genv1alpha1.PasswordSpec{Length: 52, Digits: ptr(0), Symbols: ptr(0)},
			keys: []string{"password"}, length: 52, symbolSet: DefaultSymbolCharacters, noRepeat: true},
		{name: "with repeats, many more characters than the sets hold",
			spec: genv1alpha1.PasswordSpec{Length: 300, Digits: ptr(100), Symbols: ptr(100), SymbolCharacters: ptr("#"), NoUpper: true, AllowRepeat: true},
			keys: []string{"password"}, length: 300, digits: 100, symbols: 100, symbolSet: "#", noUpper: true},
		{name: "symbolCharacters \"\" means the default symbols",
			spec: genv1alpha1.PasswordSpec{Length: 12, SymbolCharacters: ptr("")},
			keys: []string{"password"}, length: 12, digits: 3, symbols: 3, symbolSet: DefaultSymbolCharacters, noRepeat: true},
		{name: "non-ASCII symbols count as one character each",
			spec: genv1alpha1.PasswordSpec{Length: 12, Digits: ptr(2), Symbols: ptr(3), SymbolCharacters: ptr("€§ß✓")},
			keys: []string{"password"}, length: 12, digits: 2, symbols: 3, symbolSet: "€§ß✓", noRepeat: true},
		{name: "symbols that are also letters leave enough letters",
			spec: genv1alpha1.PasswordSpec{Length: 52, Digits: ptr(0), Symbols: ptr(2), SymbolCharacters: ptr("ab"), NoUpper: false},
			keys: []string{"password"}, length: 52, symbols: 2, symbolSet: "ab", noRepeat: true},
		{name: "secretKeys: one password per key",
			spec: genv1alpha1.PasswordSpec{Length: 16, SecretKeys: []string{"key1", "key2", "db.password"}},
			keys: []string{"key1", "key2", "db.password"}, length: 16, digits: 4, symbols: 4, symbolSet: DefaultSymbolCharacters, noRepeat: true},
	}
	for _, enc := range []string{EncodingBase64, EncodingBase64URL, EncodingBase32, EncodingHex, EncodingRaw} {
		tests = append(tests, struct {
			name                    string
			spec                    genv1alpha1.PasswordSpec
			keys                    []string
			length, digits, symbols int
			symbolSet               string
			noUpper, noRepeat       bool
			encoding                string
		}{name: "encoding " + enc, spec: genv1alpha1.PasswordSpec{Length: 20, Encoding: ptr(enc)},
			keys: []string{"password"}, length: 20, digits: 5, symbols: 5, symbolSet: DefaultSymbolCharacters, noRepeat: true, encoding: enc})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 { // randomness: the rules hold every time
				out, err := Password(tt.spec)
				if err != nil {
					t.Fatalf("Password: %v", err)
				}
				if len(out) != len(tt.keys) {
					t.Fatalf("keys = %d; want %v", len(out), tt.keys)
				}
				for _, k := range tt.keys {
					v, ok := out[k]
					if !ok {
						t.Fatalf("no key %q", k)
					}
					pw := decode(t, tt.encoding, v)
					c := compose(pw, tt.symbolSet)
					if c.total != tt.length {
						t.Errorf("%d characters; want %d", c.total, tt.length)
					}
					if c.digits != tt.digits || c.symbols != tt.symbols || c.letters != tt.length-tt.digits-tt.symbols {
						t.Errorf("letters %d, digits %d, symbols %d; want %d, %d, %d", c.letters, c.digits, c.symbols, tt.length-tt.digits-tt.symbols, tt.digits, tt.symbols)
					}
					if tt.noUpper && c.upper > 0 {
						t.Errorf("%d upper-case letters with noUpper", c.upper)
					}
					if tt.noRepeat && c.repeats {
						t.Error("a character repeats without allowRepeat")
					}
				}
			}
		})
	}
}

func TestPasswordsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		out, err := Password(genv1alpha1.PasswordSpec{Length: 24, SecretKeys: []string{"a", "b"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range out {
			if seen[string(v)] {
				t.Fatal("the same password twice")
			}
			seen[string(v)] = true
		}
	}
}

func TestPasswordUsesEveryCharacterClass(t *testing.T) {
	// Over many passwords every letter, digit and symbol shows up, and
	// upper-case letters among them: nothing is left out of the sets.
	counts := map[rune]int{}
	for range 300 {
		out, err := Password(genv1alpha1.PasswordSpec{Length: 40, Digits: ptr(8), Symbols: ptr(8)})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range string(out[PasswordKey]) {
			counts[r]++
		}
	}
	for _, r := range lowerLetters + upperLetters + digitChars + DefaultSymbolCharacters {
		if counts[r] == 0 {
			t.Errorf("%q never appeared in 300 passwords", r)
		}
	}
}

func TestPasswordRefusesImpossibleSpecs(t *testing.T) {
	tests := []struct {
		name  string
		spec  genv1alpha1.PasswordSpec
		field string
	}{
		{"negative digits", genv1alpha1.PasswordSpec{Length: 10, Digits: ptr(-1)}, "spec.digits"},
		{"negative symbols", genv1alpha1.PasswordSpec{Length: 10, Symbols: ptr(-3)}, "spec.symbols"},
		{"digits plus symbols over the length", genv1alpha1.PasswordSpec{Length: 10, Digits: ptr(6), Symbols: ptr(5), AllowRepeat: true}, "spec.length"},
		{"digits alone over the length", genv1alpha1.PasswordSpec{Length: 4, Digits: ptr(5), Symbols: ptr(0), AllowRepeat: true}, "spec.length"},
		{"huge digits do not overflow the sum", genv1alpha1.PasswordSpec{Length: 4, Digits: ptr(int(^uint(0) >> 1)), Symbols: ptr(int(^uint(0) >> 1))}, "spec.length"},
		{"over the maximum length", genv1alpha1.PasswordSpec{Length: MaxPasswordLength + 1, AllowRepeat: true}, "spec.length"},
		{"53 distinct letters do not exist", genv1alpha1.PasswordSpec{Length: 53, Digits: ptr(0), Symbols: ptr(0)}, "spec.allowRepeat"},
		{"27 distinct lower-case letters do not exist", genv1alpha1.PasswordSpec{Length: 27, Digits: ptr(0), Symbols: ptr(0), NoUpper: true}, "spec.allowRepeat"},
		{"11 distinct digits do not exist", genv1alpha1.PasswordSpec{Length: 20, Digits: ptr(11), Symbols: ptr(0)}, "spec.digits"},
		{"more distinct symbols than symbolCharacters", genv1alpha1.PasswordSpec{Length: 20, Digits: ptr(0), Symbols: ptr(5), SymbolCharacters: ptr("-_$@")}, "spec.symbols"},
		{"duplicate symbolCharacters count once", genv1alpha1.PasswordSpec{Length: 20, Digits: ptr(0), Symbols: ptr(3), SymbolCharacters: ptr("--__")}, "spec.symbols"},
		{"symbols that are letters the letters need", genv1alpha1.PasswordSpec{Length: 27, Digits: ptr(0), Symbols: ptr(1), SymbolCharacters: ptr("a"), NoUpper: true}, "spec.symbols"},
		{"symbols that are digits the digits need", genv1alpha1.PasswordSpec{Length: 20, Digits: ptr(10), Symbols: ptr(1), SymbolCharacters: ptr("7")}, "spec.symbols"},
		{"too many symbol characters", genv1alpha1.PasswordSpec{Length: 10, SymbolCharacters: ptr(strings.Repeat("#", MaxSymbolCharacters+1))}, "spec.symbolCharacters"},
		{"invalid UTF-8 symbols", genv1alpha1.PasswordSpec{Length: 10, SymbolCharacters: ptr("\xff\xfe")}, "spec.symbolCharacters"},
		{"an empty secret key", genv1alpha1.PasswordSpec{Length: 10, SecretKeys: []string{"a", ""}}, "spec.secretKeys[1]"},
		{"a duplicate secret key", genv1alpha1.PasswordSpec{Length: 10, SecretKeys: []string{"a", "b", "a"}}, "spec.secretKeys[2]"},
		{"a secret key the API server refuses", genv1alpha1.PasswordSpec{Length: 10, SecretKeys: []string{"a/b"}}, "spec.secretKeys[0]"},
		{"too many secret keys", genv1alpha1.PasswordSpec{Length: 10, SecretKeys: manyKeys(MaxSecretKeys + 1)}, "spec.secretKeys"},
		{"an unknown encoding", genv1alpha1.PasswordSpec{Length: 10, Encoding: ptr("rot13")}, "spec.encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Password(tt.spec)
			if err == nil {
				t.Fatalf("Password = %d keys; want an error on %s", len(out), tt.field)
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("errors.Is(%v, ErrInvalidSpec) = false", err)
			}
			var se *SpecError
			if !errors.As(err, &se) || se.Field != tt.field || se.Kind != "Password" {
				t.Errorf("error = %#v; want a SpecError on Password %s", err, tt.field)
			}
			if !strings.HasPrefix(err.Error(), "Password "+tt.field+": ") {
				t.Errorf("message %q does not start with the kind and field", err)
			}
		})
	}
}

func TestPasswordLimitsAreReachable(t *testing.T) {
	// The edges the checks allow do generate: the maximum length with
	// repeats, and every distinct character of every set without.
	if _, err := Password(genv1alpha1.PasswordSpec{Length: MaxPasswordLength, AllowRepeat: true}); err != nil {
		t.Errorf("maximum length: %v", err)
	}
	n := 52 + 10 + len(DefaultSymbolCharacters)
	out, err := Password(genv1alpha1.PasswordSpec{Length: n, Digits: ptr(10), Symbols: ptr(len(DefaultSymbolCharacters))})
	if err != nil {
		t.Fatalf("every character once: %v", err)
	}
	if c := compose(string(out[PasswordKey]), DefaultSymbolCharacters); c.total != n || c.repeats {
		t.Errorf("composition %+v; want %d distinct characters", c, n)
	}
	// Symbols overlapping letters and digits, at the exact limit: 2
	// symbols only, 1 letter and 1 digit the letters and digits leave.
	out, err = Password(genv1alpha1.PasswordSpec{Length: 25 + 9 + 4, Digits: ptr(9), Symbols: ptr(4), SymbolCharacters: ptr("ab12#%"), NoUpper: true})
	if err != nil {
		t.Fatalf("overlapping symbols at the limit: %v", err)
	}
	if c := compose(string(out[PasswordKey]), ""); c.total != 38 || c.repeats {
		t.Errorf("composition %+v; want 38 distinct characters", c)
	}
}

func manyKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	return keys
}

// FuzzPassword feeds arbitrary specs: Password never panics, refuses only
// with a SpecError, and what it generates follows the spec.
func FuzzPassword(f *testing.F) {
	f.Add(24, -1, -1, "", false, false, "raw", "")
	f.Add(42, 5, 5, "-_$@", false, true, "base64", "key1,key2")
	f.Add(26, 0, 1, "a", true, false, "hex", "")
	f.Add(20, 10, 1, "7", false, false, "base32", "")
	f.Add(0, 0, 0, "\xff", false, false, "rot13", ",")
	f.Add(38, 9, 4, "ab12#%", true, false, "base64url", "a,a")
	f.Fuzz(func(t *testing.T, length, digits, symbols int, symbolChars string, noUpper, allowRepeat bool, encoding, keys string) {
		if length > 4096 || length < -4096 {
			length %= 4096 // keep each run fast; MaxPasswordLength has its own test
		}
		spec := genv1alpha1.PasswordSpec{Length: length, NoUpper: noUpper, AllowRepeat: allowRepeat, SymbolCharacters: &symbolChars, Encoding: &encoding}
		if digits >= 0 {
			spec.Digits = &digits
		}
		if symbols >= 0 {
			spec.Symbols = &symbols
		}
		if keys != "" {
			spec.SecretKeys = strings.Split(keys, ",")
		}
		out, err := Password(spec)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error %v is not a SpecError", err)
			}
			return
		}
		p, err := planPassword(spec)
		if err != nil {
			t.Fatalf("planPassword refused what Password accepted: %v", err)
		}
		if len(out) != len(p.keys) {
			t.Fatalf("%d keys; want %d", len(out), len(p.keys))
		}
		for _, v := range out {
			pw := decode(t, p.encoding, v)
			if !utf8.ValidString(pw) || utf8.RuneCountInString(pw) != p.length {
				t.Fatalf("%d characters; want %d", utf8.RuneCountInString(pw), p.length)
			}
			digitsSeen, symbolsSeen, upperSeen := 0, 0, 0
			seen := map[rune]bool{}
			for _, r := range pw {
				if !allowRepeat && seen[r] {
					t.Fatalf("%q repeats without allowRepeat", r)
				}
				seen[r] = true
				inSymbols := containsRune(p.symbolSet, r)
				inLetters := containsRune(p.letters, r)
				inDigits := containsRune(p.digitSet, r)
				if !inSymbols && !inLetters && !inDigits {
					t.Fatalf("%q is in no allowed set", r)
				}
				if r >= 'A' && r <= 'Z' && !inSymbols {
					upperSeen++
				}
				if inDigits && !inSymbols {
					digitsSeen++
				}
				if inSymbols && !inLetters && !inDigits {
					symbolsSeen++
				}
			}
			if noUpper && upperSeen > 0 {
				t.Fatalf("upper-case letters with noUpper")
			}
			if digitsSeen > p.digits || symbolsSeen > p.symbols {
				t.Fatalf("%d digits, %d symbols; want at most %d, %d", digitsSeen, symbolsSeen, p.digits, p.symbols)
			}
		}
	})
}
