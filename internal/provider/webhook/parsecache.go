package webhook

import (
	"strings"
	"sync"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// maxParsed bounds the parsed-templates cache: more distinct stores than
// this only cost a parse each, as without the cache.
const maxParsed = 512

// parseCache remembers the parsed templates of each distinct store
// configuration. The engine validates a store and the fetch layer asks
// whether it reads the namespace on every sync; parsing sprig-enabled
// templates each time was a quarter of the controller's CPU in a first
// sync of 1,000 ExternalSecrets (docs/performance.md). Parsed templates
// are safe for concurrent use and never modified.
type parseCache struct {
	mu      sync.Mutex
	entries map[string]parsed
}

type parsed struct {
	tpls *templates
	err  error
}

// templatesOf returns spec's parsed templates, parsing them once.
func (c *parseCache) templatesOf(spec *esv1.WebhookProvider) (*templates, error) {
	key := templateKey(spec)
	c.mu.Lock()
	p, ok := c.entries[key]
	c.mu.Unlock()
	if ok {
		return p.tpls, p.err
	}
	tpls, err := parseTemplates(spec)
	c.mu.Lock()
	if c.entries == nil || len(c.entries) >= maxParsed {
		c.entries = map[string]parsed{}
	}
	c.entries[key] = parsed{tpls: tpls, err: err}
	c.mu.Unlock()
	return tpls, err
}

// templateKey is every template text of spec, unambiguously joined.
func templateKey(spec *esv1.WebhookProvider) string {
	var b strings.Builder
	field := func(s string) {
		b.WriteString(strings.ReplaceAll(s, "\x00", "\x00\x00"))
		b.WriteString("\x00|")
	}
	field(spec.URL)
	field(spec.Body)
	field(spec.Result.JSONPath)
	for _, name := range sortedHeaderNames(spec.Headers) {
		field(name)
		field(spec.Headers[name])
	}
	return b.String()
}
