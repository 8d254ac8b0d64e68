package v1

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestSecondsOrDuration(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    time.Duration
		invalid string // substring of the error; "" means valid
	}{
		{name: "seconds (ESO before v2.8)", json: `300`, want: 5 * time.Minute},
		{name: "zero seconds means the default", json: `0`, want: 0},
		{name: "Go duration (ESO since v2.8)", json: `"5m"`, want: 5 * time.Minute},
		{name: "compound Go duration", json: `"1h30m"`, want: 90 * time.Minute},
		{name: "empty string means the default", json: `""`, want: 0},
		{name: "zero duration", json: `"0s"`, want: 0},
		{name: "null means unset", json: `null`, want: 0},
		{name: "digits in a string are not seconds", json: `"300"`, invalid: `"300" is neither a number of seconds nor a duration`},
		{name: "not a duration", json: `"5 minutes"`, invalid: `"5 minutes" is neither`},
		{name: "days are not a Go duration", json: `"1d"`, invalid: `"1d" is neither`},
		{name: "negative seconds", json: `-5`, invalid: "negative"},
		{name: "negative duration", json: `"-5m"`, invalid: "negative"},
		{name: "seconds beyond int32 are kept, not a decode error", json: `3000000000`, invalid: `"3000000000" is neither`},
		{name: "a float is kept, not a decode error", json: `1.5`, invalid: `"1.5" is neither`},
		{name: "an object is kept, not a decode error", json: `{"a":1}`, invalid: "is neither"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *SecondsOrDuration
			if err := json.Unmarshal([]byte(tt.json), &s); err != nil {
				t.Fatalf("decoding %s: %v (decoding must never fail)", tt.json, err)
			}
			got, err := s.Duration()
			if tt.invalid != "" {
				if err == nil || !strings.Contains(err.Error(), tt.invalid) {
					t.Fatalf("Duration() = %v, %v; want an error containing %q", got, err, tt.invalid)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Duration() = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// The form a user wrote is the form written back, so an update by keyferry
// never rewrites a user's spec.
func TestSecondsOrDurationRoundTrip(t *testing.T) {
	for _, in := range []string{`300`, `0`, `"5m"`, `"1h30m"`, `""`, `"1d"`, `-5`} {
		var s SecondsOrDuration
		if err := json.Unmarshal([]byte(in), &s); err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(s)
		if err != nil || string(out) != in {
			t.Errorf("%s → %s, %v; want it unchanged", in, out, err)
		}
	}
	if b, _ := json.Marshal(IntervalSeconds(60)); string(b) != `60` {
		t.Errorf("IntervalSeconds(60) = %s", b)
	}
	if b, _ := json.Marshal(IntervalString("2m")); string(b) != `"2m"` {
		t.Errorf(`IntervalString("2m") = %s`, b)
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    time.Duration
		invalid string
	}{
		{name: "Go duration", json: `"1h0m0s"`, want: time.Hour},
		{name: "short form", json: `"30s"`, want: 30 * time.Second},
		{name: "zero disables refresh", json: `"0"`, want: 0},
		{name: "null", json: `null`, want: 0},
		{name: "not a duration", json: `"1 hour"`, invalid: `"1 hour" is not a duration`},
		{name: "days", json: `"1d"`, invalid: `"1d" is not a duration`},
		{name: "empty string", json: `""`, invalid: `"" is not a duration`},
		{name: "a number is kept, not a decode error", json: `3600`, invalid: `"3600" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d *Duration
			if err := json.Unmarshal([]byte(tt.json), &d); err != nil {
				t.Fatalf("decoding %s: %v (decoding must never fail)", tt.json, err)
			}
			err := d.Err()
			if tt.invalid != "" {
				if err == nil || !strings.Contains(err.Error(), tt.invalid) {
					t.Fatalf("Err() = %v; want an error containing %q", err, tt.invalid)
				}
				if d.Duration != 0 {
					t.Fatalf("Duration = %v for an invalid value; want 0", d.Duration)
				}
				return
			}
			if err != nil {
				t.Fatalf("Err() = %v", err)
			}
			if d != nil && d.Duration != tt.want {
				t.Fatalf("Duration = %v; want %v", d.Duration, tt.want)
			}
		})
	}
}

func TestDurationRoundTrip(t *testing.T) {
	for in, want := range map[string]string{`"1h"`: `"1h0m0s"`, `"1d"`: `"1d"`, `""`: `""`, `"soon"`: `"soon"`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(d)
		if err != nil || string(out) != want {
			t.Errorf("%s → %s, %v; want %s", in, out, err, want)
		}
	}
}

// An object holding invalid values decodes through the same path the
// informers use (unstructured → typed), and FieldErrors names the field.
func TestFieldErrorsAfterUnstructuredDecode(t *testing.T) {
	tests := []struct {
		name string
		obj  map[string]any
		into interface{ FieldErrors() error }
		want string
	}{
		{
			name: "store refreshInterval as a duration is valid",
			obj:  map[string]any{"refreshInterval": "5m", "provider": map[string]any{"fake": map[string]any{"data": []any{}}}},
			into: &SecretStoreSpec{},
		},
		{
			name: "store refreshInterval as seconds is valid",
			obj:  map[string]any{"refreshInterval": int64(300)},
			into: &SecretStoreSpec{},
		},
		{
			name: "store refreshInterval that is not a duration",
			obj:  map[string]any{"refreshInterval": "often"},
			into: &SecretStoreSpec{},
			want: `spec.refreshInterval: "often" is neither`,
		},
		{
			name: "webhook timeout that is not a duration",
			obj:  map[string]any{"provider": map[string]any{"webhook": map[string]any{"url": "https://x", "timeout": "5 seconds"}}},
			into: &SecretStoreSpec{},
			want: `spec.provider.webhook.timeout: "5 seconds" is not a duration`,
		},
		{
			name: "ExternalSecret refreshInterval that is not a duration",
			obj:  map[string]any{"refreshInterval": "1d"},
			into: &ExternalSecretSpec{},
			want: `spec.refreshInterval: "1d" is not a duration`,
		},
		{
			name: "ClusterExternalSecret refreshTime that is not a duration",
			obj:  map[string]any{"refreshTime": "1d", "externalSecretSpec": map[string]any{}},
			into: &ClusterExternalSecretSpec{},
			want: `spec.refreshTime: "1d" is not a duration`,
		},
		{
			name: "ClusterExternalSecret's ExternalSecret refreshInterval",
			obj:  map[string]any{"externalSecretSpec": map[string]any{"refreshInterval": "1d"}},
			into: &ClusterExternalSecretSpec{},
			want: `spec.externalSecretSpec.refreshInterval: "1d" is not a duration`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tt.obj, tt.into); err != nil {
				t.Fatalf("decoding: %v (decoding must never fail)", err)
			}
			err := tt.into.FieldErrors()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("FieldErrors() = %v; want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("FieldErrors() = %v; want %q", err, tt.want)
			}
		})
	}
}

// A whole SecretStore list in which one object holds ESO-valid but
// unusual values decodes, as the informer's list does.
func TestSecretStoreListDecodes(t *testing.T) {
	list := `{"apiVersion":"external-secrets.io/v1","kind":"SecretStoreList","items":[
	 {"metadata":{"name":"a"},"spec":{"refreshInterval":"5m","provider":{"fake":{"data":[]}}}},
	 {"metadata":{"name":"b"},"spec":{"refreshInterval":300,"provider":{"webhook":{"url":"https://x","timeout":"soon"}}}},
	 {"metadata":{"name":"c"},"spec":{"refreshInterval":"later","provider":{"doppler":{"auth":{}}}}}]}`
	var l SecretStoreList
	if err := json.Unmarshal([]byte(list), &l); err != nil {
		t.Fatalf("decoding the list: %v", err)
	}
	if len(l.Items) != 3 {
		t.Fatalf("decoded %d items", len(l.Items))
	}
	if d, err := l.Items[0].Spec.RefreshInterval.Duration(); err != nil || d != 5*time.Minute {
		t.Fatalf("a: %v, %v", d, err)
	}
	if l.Items[1].Spec.FieldErrors() == nil || l.Items[2].Spec.FieldErrors() == nil {
		t.Fatal("b and c must report their invalid fields")
	}
}

func FuzzSecondsOrDuration(f *testing.F) {
	for _, s := range []string{`300`, `"5m"`, `""`, `null`, `-1`, `"1h30m"`, `9999999999999`, `"9223372036s"`, `1e3`, `{}`, `"\u0000"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var s SecondsOrDuration
		if err := s.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("UnmarshalJSON(%q) failed: %v", in, err)
		}
		d, err := s.Duration()
		if err == nil && d < 0 {
			t.Fatalf("%q gave a negative interval %v", in, d)
		}
		out, merr := json.Marshal(s)
		if merr != nil {
			t.Fatalf("marshal: %v", merr)
		}
		// What keyferry writes back reads as the same interval and is
		// written again unchanged.
		var again SecondsOrDuration
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("%q → %s: %v", in, out, err)
		}
		d2, err2 := again.Duration()
		out2, _ := json.Marshal(again)
		if d2 != d || (err2 == nil) != (err == nil) || string(out2) != string(out) {
			t.Fatalf("%q → %s → %s (%v, %v); want %v, %v", in, out, out2, d2, err2, d, err)
		}
	})
}

func FuzzDuration(f *testing.F) {
	for _, s := range []string{`"1h"`, `"0"`, `""`, `null`, `3600`, `"1d"`, `"-5m"`, `[]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var d Duration
		if err := d.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("UnmarshalJSON(%q) failed: %v", in, err)
		}
		if d.Err() != nil && d.Duration != 0 {
			t.Fatalf("%q: invalid but Duration = %v", in, d.Duration)
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var again Duration
		if err := json.Unmarshal(out, &again); err != nil || again.Duration != d.Duration || (again.Err() == nil) != (d.Err() == nil) {
			t.Fatalf("%q → %s → %+v, %v; want %+v", in, out, again, err, d)
		}
	})
}

func TestTime(t *testing.T) {
	instant := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		json string
		want time.Time // zero: reads as "never"
	}{
		{name: "RFC 3339 as metav1.Time writes it", json: `"2024-01-02T03:04:05Z"`, want: instant},
		{name: "lower-case t and z (RFC 3339 allows them; the API server's date-time accepts them)", json: `"2024-01-02t03:04:05z"`, want: instant},
		{name: "offset", json: `"2024-01-02T04:04:05+01:00"`, want: instant},
		{name: "fractional seconds", json: `"2024-01-02T03:04:05.5Z"`, want: instant.Add(500 * time.Millisecond)},
		{name: "null", json: `null`},
		{name: "empty", json: `""`},
		{name: "not a time", json: `"yesterday"`},
		{name: "not a string", json: `17`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Time
			if err := json.Unmarshal([]byte(tt.json), &got); err != nil {
				t.Fatalf("decoding %s: %v (decoding must never fail)", tt.json, err)
			}
			if !got.Time.Time.Equal(tt.want) {
				t.Fatalf("got %v; want %v", got.Time.Time, tt.want)
			}
		})
	}
	b, err := json.Marshal(NewTime(instant))
	if err != nil || string(b) != `"2024-01-02T03:04:05Z"` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	if b, _ := json.Marshal(Time{}); string(b) != "null" {
		t.Fatalf("zero marshals as %s; want null like metav1.Time", b)
	}
	a, c := NewTime(instant), NewTime(instant.In(time.FixedZone("x", 3600)))
	if !a.Equal(&c) || !(*Time)(nil).Equal(&Time{}) || a.Equal(nil) {
		t.Fatal("Equal does not compare instants")
	}
}

// A status timestamp ESO's schema accepts but metav1.Time refuses does not
// stop the list from decoding.
func TestExternalSecretListDecodesLowerCaseTimes(t *testing.T) {
	list := `{"items":[{"metadata":{"name":"a"},"status":{"refreshTime":"2024-01-02t03:04:05z",
	  "conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2024-01-02t03:04:05z"}]}}]}`
	var l ExternalSecretList
	if err := json.Unmarshal([]byte(list), &l); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	if l.Items[0].Status.RefreshTime.IsZero() || l.Items[0].Status.Conditions[0].LastTransitionTime.IsZero() {
		t.Fatal("timestamps were lost")
	}
}

func FuzzTime(f *testing.F) {
	for _, s := range []string{`"2024-01-02T03:04:05Z"`, `"2024-01-02t03:04:05z"`, `"2024-01-02T03:04:05.999+01:00"`, `"9999-12-31T23:59:59-23:59"`, `null`, `""`, `1`, `"x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var tm Time
		if err := tm.UnmarshalJSON([]byte(in)); err != nil {
			t.Fatalf("UnmarshalJSON(%q): %v", in, err)
		}
		out, err := json.Marshal(tm)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var again Time
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("%q → %s: %v", in, out, err)
		}
		// Written back to the second, as metav1.Time does; RFC 3339 has no
		// room for years beyond 9999 (an offset can push a parsed time there).
		if y := tm.UTC().Year(); y >= 0 && y <= 9999 && !again.Time.Time.Equal(tm.Time.Time.Truncate(time.Second)) {
			t.Fatalf("%q → %s → %v; want %v", in, out, again, tm)
		}
	})
}

// Controllers compare specs and statuses with equality.Semantic, which
// panics on unexported fields; these types must have none.
func TestSemanticDeepEqual(t *testing.T) {
	decode := func(v string, into any) {
		t.Helper()
		if err := json.Unmarshal([]byte(v), into); err != nil {
			t.Fatal(err)
		}
	}
	var a, b, c ExternalSecret
	decode(`{"spec":{"refreshInterval":"1d"},"status":{"refreshTime":"2024-01-02T03:04:05Z"}}`, &a)
	decode(`{"spec":{"refreshInterval":"1d"},"status":{"refreshTime":"2024-01-02T03:04:05Z"}}`, &b)
	decode(`{"spec":{"refreshInterval":"1h"},"status":{"refreshTime":"2024-01-02T03:04:05Z"}}`, &c)
	if !equality.Semantic.DeepEqual(a, b) || equality.Semantic.DeepEqual(a, c) {
		t.Fatal("ExternalSecrets compare wrongly")
	}
	var s1, s2 SecretStore
	decode(`{"spec":{"refreshInterval":"5m"},"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2024-01-02T03:04:05Z"}]}}`, &s1)
	decode(`{"spec":{"refreshInterval":300},"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":"2024-01-02T03:04:05Z"}]}}`, &s2)
	if equality.Semantic.DeepEqual(s1, s2) || !equality.Semantic.DeepEqual(s1, *s1.DeepCopy()) {
		t.Fatal("SecretStores compare wrongly")
	}
}
