package engine

import (
	"strings"
	"testing"
	"time"
)

func TestGenerateChecks(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := func(mod func(*GeneratedRecord)) *GeneratedRecord {
		r := &GeneratedRecord{Generation: 2, ForceSync: ForceSyncDigest("a"), At: at, Keys: [][]string{{"password"}, {"uuid"}}}
		if mod != nil {
			mod(r)
		}
		return r
	}
	data := map[string][]byte{"password": []byte("x"), "uuid": []byte("y"), "other": []byte("z")}
	base := func(mod func(*GenerateInput)) GenerateInput {
		in := GenerateInput{
			Now:     at.Add(10 * time.Minute),
			Policy:  Generation{Generation: 2, ForceSync: "a", Interval: time.Hour},
			Sources: 2, SecretFound: true, SecretData: data, Record: rec(nil),
		}
		if mod != nil {
			mod(&in)
		}
		return in
	}
	tests := []struct {
		name     string
		in       GenerateInput
		generate bool
		reason   string
	}{
		{"values kept while the Secret holds them (restart, re-sync, label, restore)", base(nil), false, GenerateReasonKept},
		{"no Secret", base(func(in *GenerateInput) { in.SecretFound, in.SecretData, in.Record = false, nil, nil }), true, GenerateReasonSecretMissing},
		{"Secret without record", base(func(in *GenerateInput) { in.Record = nil }), true, GenerateReasonNoRecord},
		{"unreadable record", base(func(in *GenerateInput) { in.Record, in.RecordErr = nil, errRecord }), true, GenerateReasonRecordUnreadable},
		{"spec changed", base(func(in *GenerateInput) { in.Policy.Generation = 3 }), true, GenerateReasonSpecChanged},
		{"force-sync changed", base(func(in *GenerateInput) { in.Policy.ForceSync = "b" }), true, GenerateReasonForceSync},
		{"force-sync set for the first time", base(func(in *GenerateInput) { in.Record = rec(func(r *GeneratedRecord) { r.ForceSync = "" }) }), true, GenerateReasonForceSync},
		{"generated key removed from the Secret", base(func(in *GenerateInput) { in.SecretData = map[string][]byte{"password": []byte("x")} }), true, GenerateReasonKeysMissing},
		{"number of generator sources changed", base(func(in *GenerateInput) { in.Sources = 3 }), true, GenerateReasonKeysMissing},
		{"refresh interval elapsed", base(func(in *GenerateInput) { in.Now = at.Add(time.Hour) }), true, GenerateReasonIntervalElapsed},
		{"interval 0 generates once", base(func(in *GenerateInput) { in.Policy.Interval, in.Now = 0, at.Add(1000*time.Hour) }), false, GenerateReasonKept},
		{"just before the interval", base(func(in *GenerateInput) { in.Now = at.Add(time.Hour - time.Millisecond) }), false, GenerateReasonKept},
		{"spec change wins over missing keys", base(func(in *GenerateInput) { in.Policy.Generation, in.SecretData = 3, nil }), true, GenerateReasonSpecChanged},
		{"values a template consumed are kept while the Secret holds its rendered keys", base(func(in *GenerateInput) {
			in.Record = rec(func(r *GeneratedRecord) { r.Rendered = []string{"other"} })
			in.SecretData = map[string][]byte{"other": []byte("z")}
		}), false, GenerateReasonKept},
		{"a rendered key removed from the Secret regenerates", base(func(in *GenerateInput) {
			in.Record = rec(func(r *GeneratedRecord) { r.Rendered = []string{"other", ".dockerconfigjson"} })
		}), true, GenerateReasonKeysMissing},
		{"a generator with no output keeps nothing and never regenerates for it", base(func(in *GenerateInput) {
			in.Sources, in.Record = 1, rec(func(r *GeneratedRecord) { r.Keys = [][]string{{}} })
		}), false, GenerateReasonKept},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := DecideGenerate(tt.in, GenerateChecks)
			if d.Generate != tt.generate || d.Reason != tt.reason {
				t.Fatalf("got generate=%v reason=%s (%s), want generate=%v reason=%s", d.Generate, d.Reason, d.Message, tt.generate, tt.reason)
			}
			if d.Message == "" {
				t.Fatal("empty message")
			}
			for _, v := range data {
				if strings.Contains(d.Message, string(v)+"\"") {
					t.Fatalf("message %q quotes a value", d.Message)
				}
			}
		})
	}
}

func TestDecideGenerateWithoutARecordNeverKeeps(t *testing.T) {
	d := DecideGenerate(GenerateInput{SecretFound: true}, nil)
	if !d.Generate || d.Reason != GenerateReasonNoRecord {
		t.Fatalf("got %+v; want to generate", d)
	}
}

func TestGeneratedRecordRoundTrip(t *testing.T) {
	r := GeneratedRecord{Generation: 7, ForceSync: ForceSyncDigest("now"), At: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Keys: [][]string{{"a", "b.c"}, {}}, Rendered: []string{".dockerconfigjson"}}
	got, err := ParseGeneratedRecord(r.String())
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != r.String() || !got.At.Equal(r.At) {
		t.Fatalf("round trip: %s != %s", got, r)
	}
}

func TestParseGeneratedRecordRefuses(t *testing.T) {
	for name, s := range map[string]string{
		"not JSON":             "{",
		"no time":              `{"generation":1,"keys":[]}`,
		"invalid key":          `{"generation":1,"at":"2026-01-01T00:00:00Z","keys":[["a/b"]]}`,
		"empty key":            `{"generation":1,"at":"2026-01-01T00:00:00Z","keys":[[""]]}`,
		"invalid rendered key": `{"generation":1,"at":"2026-01-01T00:00:00Z","keys":[["a"]],"rendered":["a b"]}`,
		"too long":             strings.Repeat(" ", maxRecordBytes+1),
		"wrong type":           `{"generation":"1","at":"2026-01-01T00:00:00Z","keys":[]}`,
	} {
		if _, err := ParseGeneratedRecord(s); err == nil {
			t.Errorf("%s: accepted %q", name, s)
		}
	}
}

func TestForceSyncDigest(t *testing.T) {
	if ForceSyncDigest("") != "" {
		t.Fatal("empty annotation must record as empty")
	}
	if ForceSyncDigest("a") == ForceSyncDigest("b") || ForceSyncDigest("a") != ForceSyncDigest("a") {
		t.Fatal("digest must tell values apart and be stable")
	}
}

func FuzzParseGeneratedRecord(f *testing.F) {
	f.Add(`{"generation":1,"forceSync":"ab","at":"2026-01-01T00:00:00Z","keys":[["password"],["uuid"]]}`)
	f.Add(`{"at":"x"}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseGeneratedRecord(s)
		if err != nil {
			return
		}
		// What parses round-trips and satisfies the limits.
		again, err := ParseGeneratedRecord(r.String())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", r.String(), err)
		}
		if again.String() != r.String() {
			t.Fatalf("not stable: %s != %s", again, r)
		}
	})
}

// keepsGenerated: a template that drops generated keys is refused when
// other sources feed it (their change would need the dropped values), and
// accepted, recording the rendered keys, when only generators do.
func TestKeepsGenerated(t *testing.T) {
	gen := func() *generated {
		return &generated{values: []map[string][]byte{{"password": []byte("p")}}, record: GeneratedRecord{Keys: [][]string{{"password"}}}}
	}
	genSrc := Source{Generator: &GeneratorSource{Kind: GeneratorPassword, Name: "pw"}}
	dataSrc := Source{Data: &DataSource{SecretKey: "user"}}
	tpl := &Template{}
	tests := []struct {
		name     string
		plan     Plan
		data     map[string][]byte
		wantErr  bool
		rendered []string
	}{
		{"keys kept as generated", Plan{Sources: []Source{genSrc}, Template: tpl}, map[string][]byte{"password": []byte("p"), "dsn": []byte("x")}, false, nil},
		{"a template consuming a generator's values alone", Plan{Sources: []Source{genSrc}, Template: tpl}, map[string][]byte{".dockerconfigjson": []byte("x")}, false, []string{".dockerconfigjson"}},
		{"a template consuming them beside a provider's value", Plan{Sources: []Source{genSrc, dataSrc}, Template: tpl}, map[string][]byte{"dsn": []byte("x")}, true, nil},
		{"no template: a later generator overriding the key", Plan{Sources: []Source{genSrc, genSrc}}, map[string][]byte{"password": []byte("q")}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := gen()
			err := keepsGenerated(tt.plan, tt.data, g)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && Classify(err).Reason != ReasonInvalidSpec {
				t.Fatalf("reason %s, want InvalidSpec", Classify(err).Reason)
			}
			if strings.Join(g.record.Rendered, ",") != strings.Join(tt.rendered, ",") {
				t.Fatalf("record.Rendered = %v, want %v", g.record.Rendered, tt.rendered)
			}
		})
	}
}
