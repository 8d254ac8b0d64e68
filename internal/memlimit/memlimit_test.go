package memlimit

import (
	"errors"
	"os"
	"runtime/debug"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		noLimit bool
		bad     bool
	}{
		{in: "268435456\n", want: 268435456},
		{in: "max\n", noLimit: true},
		{in: "9223372036854771712\n", noLimit: true}, // cgroup v1 without a limit
		{in: "0", noLimit: true},
		{in: "", bad: true},
		{in: "-1", bad: true},
		{in: "256Mi", bad: true},
	} {
		got, err := Parse(tc.in)
		switch {
		case tc.noLimit:
			if !errors.Is(err, errNoLimit) {
				t.Errorf("Parse(%q) = %d, %v; want no limit", tc.in, got, err)
			}
		case tc.bad:
			if err == nil || errors.Is(err, errNoLimit) {
				t.Errorf("Parse(%q) = %d, %v; want an error", tc.in, got, err)
			}
		default:
			if err != nil || got != tc.want {
				t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"268435456\n", "max", "9223372036854771712", "", "abc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err == nil && v <= 0 {
			t.Fatalf("Parse(%q) = %d without an error", s, v)
		}
	})
}

func TestBelowMinimum(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Applied
		want bool
	}{
		{"no limit", Applied{}, false},
		{"64Mi", Applied{Container: 64 << 20, Soft: 58 << 20}, true},
		{"72Mi with GOMEMLIMIT set", Applied{Container: 72 << 20}, true},
		{"just below", Applied{Container: MinimumContainerLimit - 1}, true},
		{"the minimum", Applied{Container: MinimumContainerLimit}, false},
		{"128Mi", Applied{Container: 128 << 20}, false},
	} {
		if got := tc.in.BelowMinimum(); got != tc.want {
			t.Errorf("%s: BelowMinimum() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Apply sets GCPercent unless GOGC is set, in which case the runtime's own
// reading of it stands.
func TestApplySetsTheGCTargetUnlessGOGCIsSet(t *testing.T) {
	was, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		// Apply also sets a memory limit where the machine's cgroup has one.
		debug.SetGCPercent(was)
		debug.SetMemoryLimit(limit)
	})

	t.Setenv("GOGC", "200") // restored after the test
	debug.SetGCPercent(200)
	a, err := Apply()
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(200); got != 200 || a.GCPercent != 0 {
		t.Fatalf("with GOGC set, Apply changed the GC target to %d (reported %d)", got, a.GCPercent)
	}

	os.Unsetenv("GOGC")
	a, err = Apply()
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != GCPercent || a.GCPercent != GCPercent {
		t.Fatalf("without GOGC, the GC target is %d (reported %d), want %d", got, a.GCPercent, GCPercent)
	}
}

func TestSoftLimit(t *testing.T) {
	if got, want := SoftLimit(100<<20), int64(90<<20); got != want {
		t.Fatalf("SoftLimit(100 MiB) = %d, want %d (Share of it)", got, want)
	}
}

func TestReleasesStartupPagesOnlyWithoutALimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    Applied
		asked bool
		want  bool
	}{
		{"no limit, asked", Applied{}, true, true},
		{"no limit, not asked", Applied{}, false, false},
		{"a limit, asked", Applied{Container: 256 << 20}, true, false},
		{"a limit below the minimum, asked", Applied{Container: 64 << 20}, true, false},
		{"a limit, not asked", Applied{Container: 256 << 20}, false, false},
	} {
		if got := tc.in.ReleasesStartupPages(tc.asked); got != tc.want {
			t.Errorf("%s: ReleasesStartupPages(%v) = %v, want %v", tc.name, tc.asked, got, tc.want)
		}
	}
}
