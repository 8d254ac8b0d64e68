package generator

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"unicode/utf8"

	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
)

// ESO's Password defaults and keyferry's bounds.
const (
	// PasswordKey is the output key when spec.secretKeys is not set.
	PasswordKey = "password"
	// DefaultPasswordLength is the length when spec.length is 0 (or
	// negative), as in ESO.
	DefaultPasswordLength = 24
	// DefaultSymbolCharacters are the symbols when spec.symbolCharacters is
	// unset or empty, as in ESO.
	DefaultSymbolCharacters = "~!@#$%^&*()_+`-={}|[]\\:\"<>?,./"
	// MaxPasswordLength bounds spec.length: a Secret holds at most 1 MiB,
	// and a spec must not make the operator allocate without limit.
	MaxPasswordLength = 65536
	// MaxSecretKeys bounds spec.secretKeys for the same reason.
	MaxSecretKeys = 256
	// MaxSymbolCharacters bounds spec.symbolCharacters (in characters).
	MaxSymbolCharacters = 4096

	lowerLetters = "abcdefghijklmnopqrstuvwxyz"
	upperLetters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digitChars   = "0123456789"

	kindPassword = "Password"
)

// Password encodings (spec.encoding).
const (
	EncodingRaw       = "raw"
	EncodingBase64    = "base64"
	EncodingBase64URL = "base64url"
	EncodingBase32    = "base32"
	EncodingHex       = "hex"
)

// passwordPlan is a Password spec with ESO's defaults applied and every
// count checked: what one password is made of.
type passwordPlan struct {
	length, digits, symbols int
	letters, digitSet       []rune
	symbolSet               []rune
	allowRepeat             bool
	encoding                string
	keys                    []string
}

// letterCount is how many letters a password of the plan has.
func (p *passwordPlan) letterCount() int { return p.length - p.digits - p.symbols }

// Password generates one password per key of spec.secretKeys (or under
// "password"), with ESO's meaning of each field:
//
//   - length (default 24) is the number of characters;
//   - digits and symbols are exact counts, each 25 % of the length
//     (rounded down) when unset; the rest are letters, lower- and
//     upper-case, or lower-case only with noUpper;
//   - symbolCharacters are the symbols to choose from (default
//     DefaultSymbolCharacters, also when set to "");
//   - without allowRepeat no character appears twice in one password;
//   - the characters are in random order;
//   - encoding (raw, base64, base64url, base32, hex; with padding, as in
//     ESO) encodes the password's UTF-8 bytes.
//
// A spec that cannot be satisfied returns a *SpecError.
func Password(spec genv1alpha1.PasswordSpec) (map[string][]byte, error) {
	p, err := planPassword(spec)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(p.keys))
	for _, k := range p.keys {
		pw, err := p.generate()
		if err != nil {
			return nil, err
		}
		out[k] = encode(pw, p.encoding)
	}
	return out, nil
}

// planPassword applies ESO's defaults to spec and runs the checks, in
// order; the first that fails is the error.
func planPassword(spec genv1alpha1.PasswordSpec) (*passwordPlan, error) {
	p := &passwordPlan{length: spec.Length, allowRepeat: spec.AllowRepeat, encoding: EncodingRaw}
	if p.length <= 0 {
		p.length = DefaultPasswordLength
	}
	p.digits = p.length / 4
	if spec.Digits != nil {
		p.digits = *spec.Digits
	}
	p.symbols = p.length / 4
	if spec.Symbols != nil {
		p.symbols = *spec.Symbols
	}
	if spec.Encoding != nil {
		p.encoding = *spec.Encoding
	}
	p.letters = []rune(lowerLetters)
	if !spec.NoUpper {
		p.letters = append(p.letters, []rune(upperLetters)...)
	}
	p.digitSet = []rune(digitChars)
	symbols := DefaultSymbolCharacters
	if spec.SymbolCharacters != nil && *spec.SymbolCharacters != "" {
		symbols = *spec.SymbolCharacters
	}
	if !utf8.ValidString(symbols) {
		return nil, specErrorf(kindPassword, "spec.symbolCharacters", "is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(symbols); n > MaxSymbolCharacters {
		return nil, specErrorf(kindPassword, "spec.symbolCharacters", "has %d characters, more than the maximum of %d", n, MaxSymbolCharacters)
	}
	p.symbolSet = distinct(symbols)
	p.keys = spec.SecretKeys
	if len(p.keys) == 0 {
		p.keys = []string{PasswordKey}
	}
	for _, check := range []func(*passwordPlan) error{
		lengthIsBounded,
		countsAreNotNegative,
		countsFitTheLength,
		lettersSuffice,
		digitsSuffice,
		symbolsSuffice,
		secretKeysAreUsable,
		encodingIsKnown,
	} {
		if err := check(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// lengthIsBounded: at most MaxPasswordLength characters.
func lengthIsBounded(p *passwordPlan) error {
	if p.length > MaxPasswordLength {
		return specErrorf(kindPassword, "spec.length", "%d is more than the maximum of %d", p.length, MaxPasswordLength)
	}
	return nil
}

// countsAreNotNegative: digits and symbols are counts.
func countsAreNotNegative(p *passwordPlan) error {
	if p.digits < 0 {
		return specErrorf(kindPassword, "spec.digits", "%d is negative", p.digits)
	}
	if p.symbols < 0 {
		return specErrorf(kindPassword, "spec.symbols", "%d is negative", p.symbols)
	}
	return nil
}

// countsFitTheLength: digits and symbols are part of the length.
func countsFitTheLength(p *passwordPlan) error {
	if p.digits > p.length || p.symbols > p.length || p.digits+p.symbols > p.length {
		return specErrorf(kindPassword, "spec.length", "%d is less than digits (%d) plus symbols (%d)", p.length, p.digits, p.symbols)
	}
	return nil
}

// lettersSuffice: without repeats, at most 52 letters (26 with noUpper).
func lettersSuffice(p *passwordPlan) error {
	if n := p.letterCount(); !p.allowRepeat && n > len(p.letters) {
		return specErrorf(kindPassword, "spec.allowRepeat", "is false, and the password needs %d letters while only %d distinct letters exist (lower the length, raise digits or symbols, or allow repeats)", n, len(p.letters))
	}
	return nil
}

// digitsSuffice: without repeats, at most 10 digits.
func digitsSuffice(p *passwordPlan) error {
	if !p.allowRepeat && p.digits > len(p.digitSet) {
		return specErrorf(kindPassword, "spec.digits", "%d distinct digits are asked for, and only %d exist (allow repeats or ask for fewer)", p.digits, len(p.digitSet))
	}
	return nil
}

// symbolsSuffice: there are symbols to choose from, and without repeats
// enough distinct ones. A symbol that is also a letter or a digit can be
// used only where the letters and digits leave it free.
func symbolsSuffice(p *passwordPlan) error {
	if p.symbols == 0 {
		return nil
	}
	if p.allowRepeat {
		return nil // symbolSet is never empty: "" means the default
	}
	if avail := p.buckets().available(p); p.symbols > avail {
		return specErrorf(kindPassword, "spec.symbols", "%d distinct symbols are asked for, and symbolCharacters offers only %d that the letters and digits leave free (allow repeats, ask for fewer, or add symbols)", p.symbols, avail)
	}
	return nil
}

// secretKeysAreUsable: every key is non-empty, unique and a valid Secret
// key, and there are not too many.
func secretKeysAreUsable(p *passwordPlan) error {
	if len(p.keys) > MaxSecretKeys {
		return specErrorf(kindPassword, "spec.secretKeys", "%d keys are more than the maximum of %d", len(p.keys), MaxSecretKeys)
	}
	seen := make(map[string]bool, len(p.keys))
	for i, k := range p.keys {
		switch {
		case k == "":
			return specErrorf(kindPassword, fmt.Sprintf("spec.secretKeys[%d]", i), "is empty")
		case seen[k]:
			return specErrorf(kindPassword, fmt.Sprintf("spec.secretKeys[%d]", i), "%q is listed twice", k)
		case !validSecretKey(k):
			return specErrorf(kindPassword, fmt.Sprintf("spec.secretKeys[%d]", i), "%q is not a valid Secret key (letters, digits, '-', '_' and '.', at most 253)", k)
		}
		seen[k] = true
	}
	return nil
}

// encodingIsKnown: one of ESO's five encodings.
func encodingIsKnown(p *passwordPlan) error {
	switch p.encoding {
	case EncodingRaw, EncodingBase64, EncodingBase64URL, EncodingBase32, EncodingHex:
		return nil
	}
	return specErrorf(kindPassword, "spec.encoding", "%q is not one of raw, base64, base64url, base32, hex", p.encoding)
}

// validSecretKey is the API server's rule for a Secret's data keys.
func validSecretKey(k string) bool {
	if len(k) > 253 || k == "." || k == ".." {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// symbolBuckets splits the symbols by what else they are: only symbols,
// also letters, also digits.
type symbolBuckets struct {
	only, letters, digits []rune
}

func (p *passwordPlan) buckets() symbolBuckets {
	var b symbolBuckets
	for _, r := range p.symbolSet {
		switch {
		case containsRune(p.letters, r):
			b.letters = append(b.letters, r)
		case containsRune(p.digitSet, r):
			b.digits = append(b.digits, r)
		default:
			b.only = append(b.only, r)
		}
	}
	return b
}

// caps are how many symbols may come from the letters and from the digits
// without leaving the password short of distinct letters or digits.
func (b symbolBuckets) caps(p *passwordPlan) (letters, digits int) {
	return min(len(b.letters), len(p.letters)-p.letterCount()), min(len(b.digits), len(p.digitSet)-p.digits)
}

// available is how many distinct symbols a password without repeats can
// have.
func (b symbolBuckets) available(p *passwordPlan) int {
	l, d := b.caps(p)
	return len(b.only) + l + d
}

// generate makes one password of the plan.
func (p *passwordPlan) generate() (string, error) {
	out := make([]rune, 0, p.length)
	used := map[rune]bool{}
	if p.allowRepeat {
		for _, set := range []struct {
			chars []rune
			n     int
		}{{p.symbolSet, p.symbols}, {p.digitSet, p.digits}, {p.letters, p.letterCount()}} {
			for range set.n {
				i, err := randIndex(len(set.chars))
				if err != nil {
					return "", err
				}
				out = append(out, set.chars[i])
			}
		}
	} else {
		// Symbols first, from the buckets within their caps, so that the
		// letters and digits they leave always suffice.
		b := p.buckets()
		capL, capD := b.caps(p)
		fromL, fromD := 0, 0
		for range p.symbols {
			pools := [][]rune{b.only, nil, nil}
			if fromL < capL {
				pools[1] = b.letters
			}
			if fromD < capD {
				pools[2] = b.digits
			}
			bucket, i, err := pickAcross(pools)
			if err != nil {
				return "", err
			}
			r := pools[bucket][i]
			out = append(out, r)
			used[r] = true
			switch bucket {
			case 0:
				b.only = removeAt(b.only, i)
			case 1:
				b.letters = removeAt(b.letters, i)
				fromL++
			case 2:
				b.digits = removeAt(b.digits, i)
				fromD++
			}
		}
		for _, set := range []struct {
			chars []rune
			n     int
		}{{p.digitSet, p.digits}, {p.letters, p.letterCount()}} {
			pool := make([]rune, 0, len(set.chars))
			for _, r := range set.chars {
				if !used[r] {
					pool = append(pool, r)
				}
			}
			for range set.n {
				if len(pool) == 0 {
					return "", fmt.Errorf("password: ran out of distinct characters (a bug: the checks let an impossible spec through)")
				}
				i, err := randIndex(len(pool))
				if err != nil {
					return "", err
				}
				out = append(out, pool[i])
				used[pool[i]] = true
				pool = removeAt(pool, i)
			}
		}
	}
	if err := shuffle(out); err != nil {
		return "", err
	}
	return string(out), nil
}

// pickAcross picks one element uniformly across pools: the pool's index and
// the element's index in it.
func pickAcross(pools [][]rune) (int, int, error) {
	total := 0
	for _, pl := range pools {
		total += len(pl)
	}
	if total == 0 {
		return 0, 0, fmt.Errorf("password: ran out of distinct symbols (a bug: the checks let an impossible spec through)")
	}
	i, err := randIndex(total)
	if err != nil {
		return 0, 0, err
	}
	for b, pl := range pools {
		if i < len(pl) {
			return b, i, nil
		}
		i -= len(pl)
	}
	return 0, 0, fmt.Errorf("password: index %d outside %d symbols", i, total)
}

// shuffle puts s in uniformly random order (Fisher-Yates).
func shuffle(s []rune) error {
	for i := len(s) - 1; i > 0; i-- {
		j, err := randIndex(i + 1)
		if err != nil {
			return err
		}
		s[i], s[j] = s[j], s[i]
	}
	return nil
}

// randIndex returns a uniformly random integer in [0, n) from crypto/rand.
func randIndex(n int) (int, error) {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0, fmt.Errorf("reading random bytes: %w", err)
	}
	return int(v.Int64()), nil
}

func removeAt(s []rune, i int) []rune {
	s[i] = s[len(s)-1]
	return s[:len(s)-1]
}

func containsRune(s []rune, r rune) bool {
	for _, x := range s {
		if x == r {
			return true
		}
	}
	return false
}

// distinct returns the characters of s, each once, in order.
func distinct(s string) []rune {
	var out []rune
	seen := map[rune]bool{}
	for _, r := range s {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out
}

// encode encodes a password as ESO does (padding included).
func encode(pw, encoding string) []byte {
	b := []byte(pw)
	switch encoding {
	case EncodingBase64:
		return []byte(base64.StdEncoding.EncodeToString(b))
	case EncodingBase64URL:
		return []byte(base64.URLEncoding.EncodeToString(b))
	case EncodingBase32:
		return []byte(base32.StdEncoding.EncodeToString(b))
	case EncodingHex:
		return []byte(hex.EncodeToString(b))
	default:
		return b
	}
}
