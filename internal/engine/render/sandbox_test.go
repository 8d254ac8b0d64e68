package render

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

// small are limits small enough to reach in a unit test.
var small = Limits{MaxOutput: 4096, MaxValue: 1024, MaxAlloc: 64 << 10, MaxSteps: 10_000, MaxList: 100, MaxCostly: 1, Timeout: 5 * time.Second, Concurrency: 2}

func renderOne(t *testing.T, sb *Sandbox, tpl string, data map[string][]byte) (string, error) {
	t.Helper()
	out, err := sb.Render(context.Background(), []Item{{Key: "k", Template: tpl, Source: "test"}}, data)
	return string(out.Data["k"]), err
}

// TestBoundedFunctions checks that each bounded function behaves as sprig's
// within the limits and refuses beyond them.
func TestBoundedFunctions(t *testing.T) {
	sb := NewSandbox(small)
	tests := []struct {
		name, tpl string
		want      string // output when ok
		budget    bool   // want ErrBudgetExceeded
		fails     bool   // want another error
	}{
		{"repeat within", `{{ repeat 3 "ab" }}`, "ababab", false, false},
		{"repeat at the value limit", `{{ repeat 1024 "a" | len }}`, "1024", false, false},
		{"repeat over the value limit", `{{ repeat 1025 "a" }}`, "", true, false},
		{"repeat huge count", `{{ repeat 100000000 "ab" }}`, "", true, false},
		{"repeat negative", `{{ repeat -1 "a" }}`, "", false, true},
		{"until within", `{{ until 3 }}`, "[0 1 2]", false, false},
		{"until negative", `{{ until -3 }}`, "[0 -1 -2]", false, false},
		{"until at the list limit", `{{ until 100 | len }}`, "100", false, false},
		{"until over the list limit", `{{ until 101 }}`, "", true, false},
		{"until huge", `{{ until 100000000 }}`, "", true, false},
		{"untilStep within", `{{ untilStep 0 10 3 }}`, "[0 3 6 9]", false, false},
		{"untilStep down", `{{ untilStep 10 0 -4 }}`, "[10 6 2]", false, false},
		{"untilStep wrong direction", `{{ untilStep 0 10 -1 }}`, "[]", false, false},
		{"untilStep zero step", `{{ untilStep 0 10 0 }}`, "[]", false, false},
		{"untilStep full int range", `{{ untilStep -9223372036854775808 9223372036854775807 1 }}`, "", true, false},
		{"untilStep near max does not wrap", `{{ untilStep 9223372036854775806 9223372036854775807 5 }}`, "[9223372036854775806]", false, false},
		{"seq last", `{{ seq 3 }}`, "1 2 3", false, false},
		{"seq first last", `{{ seq 2 4 }}`, "2 3 4", false, false},
		{"seq down", `{{ seq 4 2 }}`, "4 3 2", false, false},
		{"seq first step last", `{{ seq 0 5 12 }}`, "0 5 10", false, false},
		{"seq over the list limit", `{{ seq 1000000000 }}`, "", true, false},
		{"randAlphaNum within", `{{ randAlphaNum 16 | len }}`, "16", false, false},
		{"randAlphaNum over", `{{ randAlphaNum 2000 }}`, "", true, false},
		{"randAlpha over", `{{ randAlpha 100000000 }}`, "", true, false},
		{"randNumeric over", `{{ randNumeric 100000000 }}`, "", true, false},
		{"randAscii over", `{{ randAscii 100000000 }}`, "", true, false},
		{"randAscii negative", `{{ randAscii -5 }}`, "", false, true},
		{"randBytes within", `{{ randBytes 3 | len }}`, "4", false, false},
		{"randBytes over", `{{ randBytes 100000000 }}`, "", true, false},
		{"indent within", `{{ indent 2 "a\nb" }}`, "  a\n  b", false, false},
		{"nindent within", `{{ nindent 1 "a" }}`, "\n a", false, false},
		{"indent over", `{{ indent 100000000 "a" }}`, "", true, false},
		{"indent many lines", `{{ indent 20 (repeat 100 "\n") }}`, "", true, false},
		{"replace within", `{{ replace "a" "bb" "aXa" }}`, "bbXbb", false, false},
		{"replace amplifying", `{{ replace "a" (repeat 100 "b") (repeat 100 "a") }}`, "", true, false},
		{"replace empty old amplifying", `{{ replace "" (repeat 100 "b") (repeat 100 "a") }}`, "", true, false},
		{"wrapWith within", `{{ wrapWith 2 "|" "abcd" }}`, "ab|cd", false, false},
		{"wrapWith amplifying", `{{ wrapWith 1 (repeat 500 "-") (repeat 500 "a") }}`, "", true, false},
		{"join within", `{{ join "," (list "a" "b") }}`, "a,b", false, false},
		{"join amplifying", `{{ join (repeat 500 "-") (until 100) }}`, "", true, false},
		{"regexReplaceAll within", `{{ regexReplaceAll "(a)" "xay" "${1}${1}" }}`, "xaay", false, false},
		{"regexReplaceAll amplifying", `{{ regexReplaceAll "" (repeat 100 "a") (repeat 20 "b") }}`, "", true, false},
		{"regexReplaceAll expansion amplifying", `{{ regexReplaceAll ".*" (repeat 300 "a") "$0$0$0$0$0" }}`, "", true, false},
		{"regexReplaceAllLiteral within", `{{ regexReplaceAllLiteral "a" "xa" "$1" }}`, "x$1", false, false},
		{"mustRegexReplaceAll bad regexp", `{{ mustRegexReplaceAll "(" "a" "b" }}`, "", false, true},
		{"printf within", `{{ printf "%05d-%s" 42 "x" }}`, "00042-x", false, false},
		{"printf long number in the text", `{{ printf "id-99999999999999-%s" "x" }}`, "id-99999999999999-x", false, false},
		{"printf precision over", `{{ printf "%.100000f" 1.0 }}`, "", true, false},
		{"printf flags and index", `{{ printf "%-5[1]s|" "a" }}`, "a    |", false, false},
		{"printf star width within", `{{ printf "%*d" 4 7 }}`, "   7", false, false},
		{"printf star width over", `{{ printf "%*s%*s" 1000 "a" 1000 "b" }}`, "", true, false},
		{"printf width over", `{{ printf "%100000s" "x" }}`, "", true, false},
		{"printf repeated argument over", `{{ printf "%[1]s%[1]s%[1]s" (repeat 400 "a") }}`, "", true, false},
		{"print within", `{{ print "a" 1 }}`, "a1", false, false},
		{"print large list", `{{ print (until 100) (until 100) }}`, "", true, false},
		{"println within", `{{ println "a" }}`, "a\n", false, false},
		{"genPrivateKey ecdsa", `{{ genPrivateKey "ecdsa" | hasPrefix "-----BEGIN EC PRIVATE KEY" }}`, "true", false, false},
		{"genPrivateKey dsa refused", `{{ genPrivateKey "dsa" }}`, "", false, true},
		{"genPrivateKey over the costly limit", `{{ genPrivateKey "ed25519" }}{{ genPrivateKey "ed25519" }}`, "", true, false},
		{"genPrivateKey rsa counts as four", `{{ genPrivateKey "rsa" }}`, "", true, false},
		{"bcrypt over the costly limit", `{{ bcrypt "a" | len }}{{ bcrypt "b" }}`, "", true, false},
		{"derivePassword counted", `{{ genPrivateKey "ed25519" | len | toString | derivePassword 1 "long" "p" "u" }}`, "", true, false},
		{"html metered", `{{ repeat 300 "<" | html }}`, "", true, false},
		{"urlquery within", `{{ urlquery "a b" }}`, "a+b", false, false},
		{"uniq", `{{ uniq (list 1 "a" 1 (list 2) "a" (list 2) 3) }}`, "[1 a [2] 3]", false, false},
		{"uniq of a repeated list", `{{ $l := until 10 }}{{ range until 5 }}{{ $l = concat $l $l }}{{ end }}{{ uniq $l }}`, "[0 1 2 3 4 5 6 7 8 9]", false, false},
		{"mustUniq not a list", `{{ mustUniq 3 }}`, "", false, true},
		{"cat doubling", `{{ $s := "ab" }}{{ range until 20 }}{{ $s = cat $s $s }}{{ end }}`, "", true, false},
		{"list nesting", `{{ $l := list }}{{ range until 200 }}{{ $l = list $l }}{{ end }}`, "", true, false},
		{"dict cycle", `{{ $d := dict }}{{ $_ := set $d "a" $d }}{{ $d }}`, "", true, false},
		{"concat doubling", `{{ $l := list 1 }}{{ range until 30 }}{{ $l = concat $l $l }}{{ end }}`, "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderOne(t, sb, tt.tpl, nil)
			switch {
			case tt.budget:
				if !errors.Is(err, ErrBudgetExceeded) {
					t.Fatalf("want a budget error, got %q, %v", got, err)
				}
			case tt.fails:
				if err == nil || errors.Is(err, ErrBudgetExceeded) {
					t.Fatalf("want a non-budget error, got %q, %v", got, err)
				}
			case err != nil:
				t.Fatalf("unexpected error: %v", err)
			case got != tt.want:
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBudgets checks the limits that no function replacement can give:
// range over an integer, recursion, output size and the deadline.
func TestBudgets(t *testing.T) {
	sb := NewSandbox(small)
	tests := []struct {
		name  string
		items []string
		what  string // the limit named in the error; "" means success
	}{
		{"range over an integer writing nothing", []string{"{{ range 1000000000 }}{{ end }}"}, "loop iterations"},
		{"range over an integer writing", []string{"{{ range 1000000000 }}x{{ end }}"}, "output size"},
		{"nested ranges", []string{"{{ range 1000 }}{{ range 1000 }}{{ end }}{{ end }}"}, "loop iterations"},
		{"range with continue", []string{"{{ range 1000000000 }}{{ continue }}{{ end }}"}, "loop iterations"},
		{"recursive template", []string{`{{ define "a" }}{{ template "a" }}{{ end }}{{ template "a" }}`}, "template invocations"},
		{"exponential templates", []string{`{{ define "a" }}{{ template "b" }}{{ template "b" }}{{ end }}{{ define "b" }}{{ template "c" }}{{ template "c" }}{{ end }}{{ define "c" }}{{ range 100 }}{{ end }}{{ end }}{{ range 1000 }}{{ template "a" }}{{ end }}`}, "loop iterations"},
		{"output at the limit", []string{`{{ repeat 1024 "a" }}{{ repeat 1024 "a" }}{{ repeat 1024 "a" }}{{ repeat 1024 "a" }}`}, ""},
		{"output over the limit", []string{`{{ repeat 1024 "a" }}{{ repeat 1024 "a" }}{{ repeat 1024 "a" }}{{ repeat 1024 "a" }}b`}, "output size"},
		{"output over the limit across items", []string{`{{ range 3 }}{{ repeat 1024 "a" }}{{ end }}`, `{{ range 2 }}{{ repeat 1024 "a" }}{{ end }}`}, "output size"},
		{"literal text over the limit", []string{strings.Repeat("x", 4097)}, "output size"},
		{"many small computed values", []string{`{{ range 5000 }}{{ $x := repeat 1000 "a" }}{{ end }}`}, "total size of computed values"},
		{"normal template", []string{`{{ range $i := until 10 }}{{ $i }}{{ end }}`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var items []Item
			for i, tpl := range tt.items {
				items = append(items, Item{Key: string(rune('a' + i)), Template: tpl, Source: tt.name})
			}
			_, err := sb.Render(context.Background(), items, nil)
			if tt.what == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var be *BudgetError
			if !errors.As(err, &be) || !strings.HasPrefix(be.What, tt.what) {
				t.Fatalf("want the %s budget exceeded, got %v", tt.what, err)
			}
		})
	}
}

func TestLimitedWriter(t *testing.T) {
	tests := []struct {
		name    string
		writes  []string
		cancel  bool
		written int
		fails   bool
	}{
		{"within", []string{"ab", "cd"}, false, 4, false},
		{"exactly the limit", []string{"abcdefgh"}, false, 8, false},
		{"empty writes", []string{"", "", "abc"}, false, 3, false},
		{"one byte over", []string{"abcdefgh", "i"}, false, 8, true},
		{"one large write", []string{"abcdefghi"}, false, 0, true},
		{"after the deadline", []string{"a"}, true, 0, true},
		{"empty write after the deadline", []string{""}, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			m := newMeter(ctx, Limits{MaxOutput: 8}.withDefaults())
			w := &limitedWriter{m: m}
			if tt.cancel {
				cancel(&BudgetError{What: "execution time", Limit: "1s"})
			}
			var err error
			for _, s := range tt.writes {
				if _, err = w.Write([]byte(s)); err != nil {
					break
				}
			}
			if (err != nil) != tt.fails {
				t.Fatalf("error = %v, want failure %v", err, tt.fails)
			}
			if tt.fails && !errors.Is(err, ErrBudgetExceeded) {
				t.Fatalf("error %v is not a budget error", err)
			}
			if w.buf.Len() != tt.written || m.written != tt.written {
				t.Fatalf("wrote %d (meter %d), want %d", w.buf.Len(), m.written, tt.written)
			}
		})
	}
}

// TestDeadlineStopsExecution: a range that writes nothing is stopped at
// the deadline, and the goroutine that ran it ends promptly (its pool slot
// is released) instead of burning CPU in the background.
func TestDeadlineStopsExecution(t *testing.T) {
	l := small
	l.MaxSteps, l.MaxAlloc = 1<<40, 1<<40
	l.Timeout = 200 * time.Millisecond
	for _, tpl := range []string{
		"{{ range 1000000000000 }}{{ end }}",
		"{{ range 1000000 }}{{ range 1000000 }}{{ end }}{{ end }}",
		`{{ range 1000000000000 }}{{ $x := add 1 2 }}{{ end }}`,
	} {
		sb := NewSandbox(l)
		start := time.Now()
		_, err := renderOne(t, sb, tpl, nil)
		var be *BudgetError
		if !errors.As(err, &be) || be.What != "execution time" {
			t.Fatalf("%s: want the time budget exceeded, got %v", tpl, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: render returned after %v", tpl, d)
		}
		waitFor(t, time.Second, "the aborted render to release its slot", func() bool { return len(sb.slots) == 0 })
	}
}

// TestPoolIsBounded: renders beyond Concurrency wait for a slot, giving up
// with their context; a slot frees when a render ends.
func TestPoolIsBounded(t *testing.T) {
	l := small
	l.Concurrency = 1
	l.MaxSteps = 1 << 40
	l.Timeout = 300 * time.Millisecond
	sb := NewSandbox(l)
	done := make(chan error, 1)
	go func() {
		_, err := sb.Render(context.Background(), []Item{{Key: "k", Template: "{{ range 1000000000000 }}{{ end }}", Source: "slow"}}, nil)
		done <- err
	}()
	waitFor(t, time.Second, "the slow render to take the slot", func() bool { return len(sb.slots) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := sb.Render(ctx, []Item{{Key: "k", Template: "x", Source: "fast"}}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a render beyond the pool did not wait: %v", err)
	}
	if err := <-done; !errors.Is(err, ErrBudgetExceeded) {
		t.Fatalf("slow render: %v", err)
	}
	if got, err := renderOne(t, sb, "x", nil); err != nil || got != "x" {
		t.Fatalf("render after the slot freed: %q, %v", got, err)
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSanitize(t *testing.T) {
	const canary = "CANARY-7d1e"
	data := map[string][]byte{"v": []byte(canary), "doc": []byte(`{"a":"` + canary + `"}`)}
	tests := []struct{ tpl, want string }{
		{"{{ range .v }}{{ end }}", "line 1, column 9: range over a value that cannot be iterated"},
		{"{{ range $k, $v := 3 }}{{ end }}", "range declares more variables than the value provides"},
		{"{{ eq .v (list 1) }}", "line 1, column 3: calling eq failed"},
		{"{{ index .v 99 }}", "calling index failed"},
		{"{{ index (fromJson .doc) 1 }}", "calling index failed"},
		{"{{ .missing }}", "line 1, column 3: the data has no key missing"},
		{"{{ .v.field }}", "a field was read from a value that has no fields"},
		{"{{ fromJson .v }}", "calling fromJson failed: value is not valid JSON"},
		{"{{ (fromJson .doc).a.b }}", "a field was read from a value that has no fields"},
		{"{{ atoi .v | div 1 }}", "calling div failed"},
		{"{{ slice .v 3 1 }}", "calling slice failed"},
		{"{{ fail .v }}", "calling fail failed"},
		{`{{ define "x" }}{{ .v.z }}{{ end }}{{ template "x" . }}`, `a field was read from a value that has no fields`},
		{"{{ printf .v }}", ""},
	}
	sb := NewSandbox(Limits{})
	for _, tt := range tests {
		t.Run(tt.tpl, func(t *testing.T) {
			_, err := renderOne(t, sb, tt.tpl, data)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			if strings.Contains(err.Error(), canary) {
				t.Fatalf("error quotes the value: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
}

// TestCallerKeysAreBounded: functions that sign with a key the template
// passes refuse keys larger than 8192-bit RSA before parsing them.
func TestCallerKeysAreBounded(t *testing.T) {
	huge := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: bytes.Repeat([]byte{1}, 7<<10)}))
	sb := NewSandbox(Limits{MaxCostly: 8})
	data := map[string][]byte{"huge": []byte(huge), "hugeb64": []byte(base64.StdEncoding.EncodeToString([]byte(huge)))}
	tests := []struct {
		name, tpl string
		refused   bool
	}{
		{"genCAWithKey small key", `{{ $k := genPrivateKey "ecdsa" }}{{ (genCAWithKey "ca" 1 $k).Cert | hasPrefix "-----BEGIN CERTIFICATE" }}`, false},
		{"genCAWithKey huge key", `{{ (genCAWithKey "ca" 1 .huge).Cert }}`, true},
		{"genSelfSignedCertWithKey huge key", `{{ (genSelfSignedCertWithKey "x" nil nil 1 .huge).Cert }}`, true},
		{"genSignedCertWithKey huge key", `{{ $ca := genCA "ca" 1 }}{{ (genSignedCertWithKey "x" nil nil 1 $ca .huge).Cert }}`, true},
		{"buildCustomCert huge key", `{{ (buildCustomCert "eA==" .hugeb64).Cert }}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := renderOne(t, sb, tt.tpl, data)
			if tt.refused {
				if err == nil || !strings.Contains(err.Error(), "larger than 8192-bit RSA") {
					t.Fatalf("want the key refused, got %q, %v", got, err)
				}
				return
			}
			if err != nil || got != "true" {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}
