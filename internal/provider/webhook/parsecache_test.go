package webhook

import (
	"fmt"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

func TestParseCacheParsesEachConfigurationOnce(t *testing.T) {
	var c parseCache
	spec := &esv1.WebhookProvider{URL: "http://h/{{ .remoteRef.key }}", Headers: map[string]string{"A": "1", "B": "{{ .remoteRef.key }}"}}
	first, err := c.templatesOf(spec)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := c.templatesOf(&esv1.WebhookProvider{URL: spec.URL, Headers: map[string]string{"B": "{{ .remoteRef.key }}", "A": "1"}})
	if again != first {
		t.Fatal("the same configuration was parsed twice")
	}
	other, _ := c.templatesOf(&esv1.WebhookProvider{URL: spec.URL, Headers: map[string]string{"A": "1", "B": "{{ .remoteRef.version }}"}})
	if other == first {
		t.Fatal("a different header template was served from the cache")
	}
	// A field boundary cannot be forged: URL "a" + body "b" differs from URL "a\x00|b".
	if templateKey(&esv1.WebhookProvider{URL: "a", Body: "b"}) == templateKey(&esv1.WebhookProvider{URL: "a\x00|b"}) {
		t.Fatal("two configurations share a cache key")
	}
}

func TestParseCacheKeepsErrorsAndStaysBounded(t *testing.T) {
	var c parseCache
	bad := &esv1.WebhookProvider{URL: "http://h/{{ .remoteRef.key "}
	if _, err := c.templatesOf(bad); err == nil {
		t.Fatal("a broken template parsed")
	}
	if _, err := c.templatesOf(bad); err == nil {
		t.Fatal("the cached result of a broken template is not an error")
	}
	for i := range 3 * maxParsed {
		if _, err := c.templatesOf(&esv1.WebhookProvider{URL: fmt.Sprintf("http://h/%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.entries); n > maxParsed {
		t.Fatalf("cache holds %d entries, more than %d", n, maxParsed)
	}
}
