package exepages

import (
	"strings"
	"testing"
)

const sampleSmaps = `00400000-02644000 r-xp 00000000 fd:00 1234                               /usr/bin/keyferry
Size:              35088 kB
Rss:               21052 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me dw sd
02644000-04c51000 r--p 02244000 fd:00 1234                               /usr/bin/keyferry
Size:              38964 kB
Rss:               21300 kB
Anonymous:             0 kB
THPeligible:    0
04c51000-04d08000 rw-p 04851000 fd:00 1234                               /usr/bin/keyferry
Size:                732 kB
Rss:                 668 kB
Anonymous:           120 kB
04d08000-04d10000 r--p 04908000 fd:00 1234                               /usr/bin/keyferry
Size:                 32 kB
Rss:                  32 kB
Anonymous:             8 kB
04d10000-04d20000 r--s 04910000 fd:00 1234                               /usr/bin/keyferry
Rss:                  16 kB
Anonymous:             0 kB
7fb67fb6e000-7fb67ff00000 rw-p 00000000 00:00 0
Rss:                1876 kB
Anonymous:          1876 kB
7fb6c680d000-7fb6c6883000 r--p 00000000 fd:00 99                         /usr/lib/with space.so
Rss:                 344 kB
Anonymous:             0 kB
`

func TestReadOnlyMappingsKeepsOnlyTheExecutablesUnmodifiedReadOnlyPages(t *testing.T) {
	got, err := ReadOnlyMappings([]byte(sampleSmaps), "/usr/bin/keyferry")
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Start: 0x400000, End: 0x2644000, Resident: 21052 << 10},  // code
		{Start: 0x2644000, End: 0x4c51000, Resident: 21300 << 10}, // read-only data
		// Not the writable data, the read-only mapping holding a private
		// copy of a page, the shared mapping, the heap, another file.
	}
	if len(got) != len(want) {
		t.Fatalf("got %d mappings %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestReadOnlyMappingsReadsPathsWithSpaces(t *testing.T) {
	got, err := ReadOnlyMappings([]byte(sampleSmaps), "/usr/lib/with space.so")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Resident != 344<<10 {
		t.Errorf("got %+v, want the one mapping of 344 kB", got)
	}
}

func TestReadOnlyMappingsRefusesWhatItCannotRead(t *testing.T) {
	for name, tc := range map[string]struct{ smaps, want string }{
		"field first":     {"Rss: 4 kB\n", "field \"Rss\" before any mapping"},
		"size unit":       {"00400000-00401000 r--p 0 fd:00 1 /x\nRss: 4 MB\n", "not in kB"},
		"size number":     {"00400000-00401000 r--p 0 fd:00 1 /x\nAnonymous: x kB\n", "not a number"},
		"negative size":   {"00400000-00401000 r--p 0 fd:00 1 /x\nRss: -4 kB\n", "not a number"},
		"short header":    {"00400000-00401000 r--p\n", "has 2 fields"},
		"no dash":         {"00400000 r--p 0 fd:00 1 /x\n", "has no dash"},
		"bad start":       {"zz-00401000 r--p 0 fd:00 1 /x\n", "mapping start"},
		"bad end":         {"00400000-zz r--p 0 fd:00 1 /x\n", "mapping end"},
		"ends before":     {"00401000-00400000 r--p 0 fd:00 1 /x\n", "ends before it starts"},
		"line is too big": {"00400000-00401000 r--p 0 fd:00 1 /" + strings.Repeat("x", 2<<20) + "\n", "token too long"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ReadOnlyMappings([]byte(tc.smaps), "/x")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzReadOnlyMappings(f *testing.F) {
	f.Add([]byte(sampleSmaps), "/usr/bin/keyferry")
	f.Add([]byte("00400000-00401000 r--p 0 fd:00 1 /x\nRss: 4 kB\n"), "/x")
	f.Fuzz(func(t *testing.T, smaps []byte, exe string) {
		maps, err := ReadOnlyMappings(smaps, exe)
		if err != nil {
			return
		}
		for _, m := range maps {
			if m.End < m.Start || m.Resident < 0 {
				t.Fatalf("mapping %+v from %q", m, smaps)
			}
		}
	})
}
