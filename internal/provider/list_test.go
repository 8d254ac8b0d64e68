package provider_test

import (
	"context"
	"errors"
	"regexp"
	"testing"

	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// FuzzFindMatcher: find.name.regexp is user input; a bad expression is an
// invalid configuration, never a panic, and a good one matches as Go's
// regexp does.
func FuzzFindMatcher(f *testing.F) {
	for _, s := range []string{"", "^app-", "(", "a{1000000}", `\p{Greek}+$`, "[[:alpha:]"} {
		f.Add(s, "app-db")
	}
	f.Fuzz(func(t *testing.T, expr, name string) {
		match, err := provider.Find{Name: expr}.Matcher()
		re, reErr := regexp.Compile(expr)
		switch {
		case expr == "":
			if err != nil || !match(name) {
				t.Fatalf("an empty name expression must match every name, got %v", err)
			}
		case reErr != nil:
			if !errors.Is(err, provider.ErrInvalidConfig) {
				t.Fatalf("Matcher(%q) = %v, want ErrInvalidConfig", expr, err)
			}
		case err != nil:
			t.Fatalf("Matcher(%q): %v", expr, err)
		case match(name) != re.MatchString(name):
			t.Fatalf("Matcher(%q)(%q) = %v, regexp says %v", expr, name, match(name), re.MatchString(name))
		}
	})
}

// memClient lists its values in pages of two, with the values of keys
// starting with "v/" in the listing; it counts its calls.
type memClient struct {
	values      map[string]string
	order       []string
	lists, gets int
}

func (c *memClient) GetSecret(_ context.Context, r provider.Ref) (provider.Value, error) {
	c.gets++
	if v, ok := c.values[r.Key]; ok {
		return provider.Value{Data: []byte(v)}, nil
	}
	return provider.Value{}, provider.ErrNotFound
}
func (c *memClient) Validate(context.Context) error { return nil }
func (c *memClient) Close(context.Context) error    { return nil }

func (c *memClient) ListSecrets(context.Context, provider.List) provider.ListPager {
	var pages [][]provider.Listed
	for i := 0; i < len(c.order); i += 2 {
		var page []provider.Listed
		for _, k := range c.order[i:min(i+2, len(c.order))] {
			l := provider.Listed{Name: k, Ref: provider.Ref{Key: k}}
			if k[:2] == "v/" {
				l.Value = &provider.Value{Data: []byte(c.values[k])}
			}
			page = append(page, l)
		}
		pages = append(pages, page)
	}
	return &countingPages{c: c, pages: pages}
}

type countingPages struct {
	c     *memClient
	pages [][]provider.Listed
}

func (p *countingPages) More() bool { return len(p.pages) > 0 }
func (p *countingPages) NextPage(context.Context) ([]provider.Listed, error) {
	p.c.lists++
	page := p.pages[0]
	p.pages = p.pages[1:]
	return page, nil
}

func TestFindInListsSelectsAndReadsWhatTheListingDidNotReturn(t *testing.T) {
	c := &memClient{
		values: map[string]string{"g/a": "1", "v/b": "2", "g/skip": "3", "v/c": "4"},
		// "g/gone" is listed but deleted before it is read
		order: []string{"g/a", "v/b", "g/skip", "g/gone", "v/c"},
	}
	got, err := fetch.FindIn(context.Background(), c, provider.Find{Name: "/[a-z]$|gone"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got["g/a"]) != "1" || string(got["v/b"]) != "2" || string(got["v/c"]) != "4" {
		t.Fatalf("FindIn = %q, want g/a, v/b and v/c", got)
	}
	if c.lists != 3 || c.gets != 2 {
		t.Fatalf("%d list and %d get calls, want 3 pages and 2 gets (g/a, g/gone)", c.lists, c.gets)
	}
	if _, err := fetch.FindIn(context.Background(), c, provider.Find{Name: "("}); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Fatalf("an invalid name expression: %v, want ErrInvalidConfig", err)
	}
}

func TestPages(t *testing.T) {
	boom := errors.New("boom")
	p := provider.FailedPages(boom)
	if !p.More() {
		t.Fatal("FailedPages has no page to fail")
	}
	if _, err := p.NextPage(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("FailedPages: %v, want its error", err)
	}
	if p.More() {
		t.Fatal("FailedPages has more after its failure")
	}
	calls := 0
	s := provider.SinglePage(func(context.Context) ([]provider.Listed, error) {
		calls++
		return []provider.Listed{{Name: "a"}}, nil
	})
	if calls != 0 || !s.More() {
		t.Fatal("SinglePage called before its page was asked for")
	}
	if page, err := s.NextPage(context.Background()); err != nil || len(page) != 1 || s.More() || calls != 1 {
		t.Fatalf("SinglePage: %v %v more=%v calls=%d", page, err, s.More(), calls)
	}
}
