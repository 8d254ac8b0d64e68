package v1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The types in this file decode every value the API server can hand them
// without an error. A type whose UnmarshalJSON fails makes the informer's
// list fail for every object of the kind, so one malformed object would stop
// keyferry from syncing anything. Instead, a spec value that does not parse is
// kept as written (so an update writes it back) and reported through
// FieldErrors, which the controllers turn into a condition naming the field.

// SecondsOrDuration is an interval written either as an integer number of
// seconds (300, the form of ESO before v2.8) or as a Go duration string
// ("5m", accepted by ESO since v2.8). Its schema is ESO's: int-or-string.
type SecondsOrDuration intstr.IntOrString

// IntervalSeconds returns an interval written as a number of seconds.
func IntervalSeconds(s int32) *SecondsOrDuration {
	return &SecondsOrDuration{Type: intstr.Int, IntVal: s}
}

// IntervalString returns an interval written as a string such as "5m".
func IntervalString(s string) *SecondsOrDuration {
	return &SecondsOrDuration{Type: intstr.String, StrVal: s}
}

// UnmarshalJSON accepts a JSON integer, a JSON string or null, and never
// fails: anything else (an integer beyond int32, which ESO cannot decode
// either, or what the CRD's schema rejects) is kept as a string that Duration
// reports as invalid.
func (s *SecondsOrDuration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = SecondsOrDuration{}
	case len(b) > 0 && b[0] == '"':
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			str = text(b)
		}
		*s = SecondsOrDuration{Type: intstr.String, StrVal: str}
	default:
		n, err := strconv.ParseInt(string(b), 10, 32)
		if err != nil {
			// Out of range or not an integer: keep the text.
			*s = SecondsOrDuration{Type: intstr.String, StrVal: text(b)}
			return nil
		}
		*s = SecondsOrDuration{Type: intstr.Int, IntVal: int32(n)}
	}
	return nil
}

// text returns b as valid UTF-8, for values kept as written.
func text(b []byte) string { return strings.ToValidUTF8(string(b), "\uFFFD") }

// MarshalJSON writes the interval in the form it was written in.
func (s SecondsOrDuration) MarshalJSON() ([]byte, error) {
	if s.Type == intstr.String {
		return json.Marshal(s.StrVal)
	}
	return json.Marshal(s.IntVal)
}

// String returns the interval as written.
func (s *SecondsOrDuration) String() string {
	if s == nil {
		return ""
	}
	if s.Type == intstr.String {
		return s.StrVal
	}
	return strconv.Itoa(int(s.IntVal))
}

// Duration returns the interval; nil, 0, "" and "0s" all mean zero (ESO:
// "empty or 0 defaults to the controller's configuration"). The error says
// why a value is not a valid interval: a string that is not a Go duration, or
// a negative value.
func (s *SecondsOrDuration) Duration() (time.Duration, error) {
	if s == nil {
		return 0, nil
	}
	return ParseSecondsOrDuration(s.String(), s.Type == intstr.Int)
}

// ParseSecondsOrDuration parses an interval: when seconds is true, v is an
// integer number of seconds; otherwise a Go duration such as 90s or 1h30m.
func ParseSecondsOrDuration(v string, seconds bool) (time.Duration, error) {
	if seconds {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a whole number of seconds", v)
		}
		if n < 0 {
			return 0, fmt.Errorf("%d seconds is negative", n)
		}
		if n > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("%d seconds is too long", n)
		}
		return time.Duration(n) * time.Second, nil
	}
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is neither a number of seconds nor a duration such as 5m or 1h30m", v)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", v)
	}
	return d, nil
}

// Duration is a Go duration string such as "1h" or "30s", like
// metav1.Duration, except that decoding never fails: a value that is not a
// duration leaves Duration zero, is reported by Err, and is written back
// unchanged.
//
// +kubebuilder:validation:Type=string
type Duration struct {
	// Duration is the parsed value.
	Duration time.Duration `json:"-"`
	// AsWritten is the JSON value as written when it is not a duration
	// (then Duration is 0); nil for a valid duration.
	AsWritten json.RawMessage `json:"-"`
}

// UnmarshalJSON accepts any JSON value without error.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*d = Duration{}
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var str string
	isString := json.Unmarshal(b, &str) == nil
	if !isString && !json.Valid(b) {
		// Only a direct call can pass invalid JSON: read it as a string.
		str, isString = text(b), true
		b, _ = json.Marshal(str)
	}
	if isString {
		if pd, err := time.ParseDuration(str); err == nil {
			d.Duration = pd
			return nil
		}
	}
	d.AsWritten = append(json.RawMessage{}, b...)
	return nil
}

// MarshalJSON writes the duration, or the invalid value as it was written.
func (d Duration) MarshalJSON() ([]byte, error) {
	if d.AsWritten != nil {
		return d.AsWritten, nil
	}
	return json.Marshal(d.Duration.String())
}

// Err says why the value as written is not a duration; nil for a valid or
// absent value.
func (d *Duration) Err() error {
	if d == nil || d.AsWritten == nil {
		return nil
	}
	return fmt.Errorf("%q is not a duration such as 30s, 5m or 1h30m", d.String())
}

// String returns the duration as written.
func (d *Duration) String() string {
	switch {
	case d == nil:
		return ""
	case d.AsWritten != nil:
		var str string
		if err := json.Unmarshal(d.AsWritten, &str); err == nil {
			return str
		}
		return string(d.AsWritten)
	}
	return d.Duration.String()
}

// Time is a timestamp in a status, like metav1.Time, except that decoding
// never fails. The API server's date-time format accepts RFC 3339 with a
// lower-case "t" or "z" (RFC 3339 allows them), which metav1.Time refuses;
// those are read as the same instant. Anything else reads as the zero time
// ("never"), which the controllers then overwrite.
//
// +kubebuilder:validation:Type=string
// +kubebuilder:validation:Format=date-time
type Time struct {
	metav1.Time `json:"-"`
}

// NewTime returns a Time holding t.
func NewTime(t time.Time) Time { return Time{Time: metav1.NewTime(t)} }

// UnmarshalJSON accepts any JSON value without error.
func (t *Time) UnmarshalJSON(b []byte) error {
	*t = Time{}
	var str string
	if err := json.Unmarshal(b, &str); err != nil || str == "" {
		return nil
	}
	pt, err := time.Parse(time.RFC3339, strings.ToUpper(str))
	if err != nil {
		return nil
	}
	t.Time = metav1.NewTime(pt.Local())
	return nil
}

// MarshalJSON writes the time as metav1.Time does (UTC, RFC 3339; null when
// zero).
func (t Time) MarshalJSON() ([]byte, error) { return t.Time.MarshalJSON() }

// Equal reports whether t and u are the same instant (both nil or zero
// count as equal), like metav1.Time.Equal.
func (t *Time) Equal(u *Time) bool {
	switch {
	case t == nil && u == nil:
		return true
	case t == nil:
		return u.IsZero()
	case u == nil:
		return t.IsZero()
	}
	return t.Time.Equal(&u.Time)
}
